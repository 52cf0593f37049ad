"""Model allowlists: a model is allowed when every applicable list allows it (empty = no limit)."""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping, Sequence

# Allowlist entries that mean "every model".
ALL_MODELS = frozenset({"*", "all-proxy-models"})

# Stands in for a key group that no longer exists: it allows nothing rather than everything.
NOTHING: tuple[str, ...] = ("\x00no-such-group",)


AccessGroups = Mapping[str, Collection[str]]
"""LiteLLM's model access groups: a group name (from deployments' model_info.access_groups) -> the
model names in it. An allowlist naming a group allows every model in it."""
NO_ACCESS_GROUPS: AccessGroups = {}


def list_permits(
    allowlist: Sequence[str], model: str, access_groups: AccessGroups = NO_ACCESS_GROUPS
) -> bool:
    """Whether one allowlist lets model through; an entry such as `openai/*` allows every name
    it matches (`*`: any run of characters), and an access group's name every model in it."""
    if not allowlist or model in allowlist or not ALL_MODELS.isdisjoint(allowlist):
        return True
    return any(
        model in access_groups.get(entry, ())
        or ("*" in entry and _pattern(entry).fullmatch(model) is not None)
        for entry in allowlist
    )


@functools.lru_cache(maxsize=1024)
def _pattern(entry: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in entry.split("*")), re.DOTALL)


def permits(
    allowlists: Iterable[Sequence[str]], model: str, access_groups: AccessGroups = NO_ACCESS_GROUPS
) -> bool:
    """Whether every allowlist lets model through."""
    return all(list_permits(allowed, model, access_groups) for allowed in allowlists)


# Route groups a key's allowed_routes may name instead of paths (LiteLLM's names).
ROUTE_GROUPS: dict[str, tuple[str, ...]] = {
    "llm_api_routes": ("/chat/completions", "/completions", "/embeddings", "/responses", "/messages",
                       "/moderations", "/rerank", "/images/", "/audio/", "/engines/", "/openai/deployments/",
                       "/models"),
    "info_routes": ("/key/info", "/key/health", "/model/info", "/v1/model/info", "/v2/model/info",
                    "/model_group/info", "/spend/logs", "/group/info", "/user/info", "/team/info"),
    "management_routes": ("/key/", "/user/", "/team/", "/organization/", "/customer/", "/end_user/",
                          "/budget/", "/group/", "/model/", "/v2/model/", "/model_group/", "/spend/",
                          "/audit", "/config/status"),
}  # fmt: skip


def route_permitted(allowed_routes: Sequence[str], path: str) -> bool:
    """Whether a key limited to allowed_routes may call path (empty: every route).

    Entries are paths (with or without /v1) or route groups such as llm_api_routes.
    """
    if not allowed_routes:
        return True
    bare = path.removeprefix("/v1") or "/"
    for allowed in allowed_routes:
        prefixes = ROUTE_GROUPS.get(allowed)
        if prefixes is not None:
            if any(bare.startswith(p) or path.startswith(p) for p in prefixes):
                return True
        elif allowed in (path, bare) or allowed.removeprefix("/v1") == bare:
            return True
    return False
