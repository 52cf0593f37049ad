"""What a request is limited by, as `limits.plan` compiles it from the snapshot (plain data: the
request carries its plan, so this module imports nothing of the request path)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateRule:
    """Requests per minute, tokens per minute and requests in flight of one counter."""

    what: str
    """Names the entity in an error ("key", "team", "key (model gpt-4o)")."""
    counter_id: str
    rpm: float | None
    tpm: float | None
    parallel: float | None
    share_keys: tuple[str, str, str] = ("", "", "")
    """The names of its requests, tokens and in-flight shares."""

    def __post_init__(self) -> None:
        if not self.share_keys[0]:
            counter = self.counter_id
            object.__setattr__(self, "share_keys", (f"{counter}|r", f"{counter}|t", f"{counter}|p"))


@dataclass(frozen=True, slots=True)
class BudgetRule:
    """The budgets of one entity: its spend counts in the running total under `kv_key`."""

    what: str
    kind: str
    entity: str
    kv_key: str
    windows: tuple[tuple[str, float, str], ...]
    """(budget_duration, max_budget, share name); "" is over all time."""


@dataclass(frozen=True, slots=True)
class LimitPlan:
    """Everything a request is limited by."""

    rates: tuple[RateRule, ...]
    budgets: tuple[BudgetRule, ...]
    counts_tokens: bool = False
    """Whether a tokens-per-minute limit applies (the request's tokens are then estimated)."""


NO_LIMITS = LimitPlan((), ())
