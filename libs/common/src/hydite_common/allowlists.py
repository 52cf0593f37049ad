"""Model allowlists: a model is allowed when every applicable list allows it (empty = no limit)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# Allowlist entries that mean "every model".
ALL_MODELS = frozenset({"*", "all-proxy-models"})

# Stands in for a key group that no longer exists: it allows nothing rather than everything.
NOTHING: tuple[str, ...] = ("\x00no-such-group",)


def list_permits(allowlist: Sequence[str], model: str) -> bool:
    """Whether one allowlist lets model through."""
    return not allowlist or model in allowlist or not ALL_MODELS.isdisjoint(allowlist)


def permits(allowlists: Iterable[Sequence[str]], model: str) -> bool:
    """Whether every allowlist lets model through."""
    return all(list_permits(allowed, model) for allowed in allowlists)
