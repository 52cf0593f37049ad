"""Which limits and budgets a request falls under, compiled once per snapshot and caller.

The entities: the key (and per model within it), its user, team, organization, the key's member
entry in its team, its key group, the end user, every tag of the request with limits, and the
proxy. An entity linking a Budget takes the budget's limits where it sets none of its own. Reading
the protobufs costs microseconds, so a request's plan is cached by what decides it (the key, the
model, the end user and the tags) until the snapshot changes.
"""

from __future__ import annotations

from collections.abc import Iterator

from hydite.config.v1 import config_pb2 as pb
from hydite_common.config_types import GLOBAL_LIMITS, TAG, customer_name
from hydite_common.spend_totals import totals_key
from hydite_dataplane.config.snapshot import Snapshot
from hydite_dataplane.limits.rules import NO_LIMITS, BudgetRule, LimitPlan, RateRule
from hydite_dataplane.request import InferenceRequest, Owner

Limited = pb.VirtualKey | pb.Customer | Owner

BYTES_PER_PROMPT_TOKEN = 3
"""A prompt's tokens, estimated from its body's size at admission (UTF-8 CJK text is about three
bytes a token, English about four: the estimate errs high), settled with the real count."""
PROXY_LIMITS = "proxy"
"""The name of the one GlobalLimits resource."""
PLANS_KEPT = 50_000
"""Plans cached per snapshot (the cache starts over when it is full)."""


def _merged(snapshot: Snapshot, entity: Limited) -> pb.Limits | None:
    """An entity's limits: its own, with those of the budget it links filling what it leaves unset."""
    own = entity.limits if entity.HasField("limits") else None
    budget_id = getattr(entity, "budget_id", "")
    budget = snapshot.budgets.get(budget_id) if budget_id else None
    if budget is None:
        return own
    merged = pb.Limits()
    merged.CopyFrom(budget.limits)
    if own is not None:
        merged.MergeFrom(own)
    return merged


def _member_limits(team: pb.Team, user_id: str) -> pb.Limits | None:
    """A team member's limits: the team's defaults for every member, their own entry over them."""
    defaults = team.member_defaults if team.HasField("member_defaults") else None
    own = team.member_limits.get(user_id)
    if own is None:
        return defaults
    if defaults is None:
        return own
    merged = pb.Limits()
    merged.CopyFrom(defaults)
    merged.MergeFrom(own)
    return merged


def budget_windows(limits: pb.Limits) -> tuple[tuple[str, float], ...]:
    """(duration, max_budget) of every budget in limits."""
    windows = [(limits.budget_duration, limits.max_budget)] if limits.HasField("max_budget") else []
    windows += [(window.budget_duration, window.max_budget) for window in limits.budget_windows]
    seen: dict[str, float] = {}
    for duration, amount in windows:
        seen[duration] = min(amount, seen.get(duration, amount))
    return tuple(seen.items())


def _optional(limits: pb.Limits, name: str) -> float | None:
    return float(getattr(limits, name)) if limits.HasField(name) else None


def _entities(request: InferenceRequest) -> Iterator[tuple[str, str, str, pb.Limits | None]]:
    """(what, totals kind, entity id, limits) of every entity of the request."""
    snapshot = request.caller.snapshot
    key = request.key
    yield "key", "key", request.key_hash, _merged(snapshot, key)
    for kind, entity_id, owner in request.caller.owners():
        if owner is not None:
            yield kind, kind, entity_id, _merged(snapshot, owner)
    if key.team_id and key.user_id and (team := snapshot.teams.get(key.team_id)) is not None:
        member = f"{key.team_id}:{key.user_id}"
        yield "team member", "team_member", member, _member_limits(team, key.user_id)
    if key.key_group and (group := snapshot.key_groups.get(key.key_group)) is not None:
        yield "key group", "key_group", key.key_group, group.limits if group.HasField("limits") else None
    customer = request.customer
    if customer is not None:
        # The resolved end user's resource name: two tenants' end users of one id never share.
        name = customer_name(customer.customer_id, customer.team_id, customer.organization_id)
        yield "customer", "customer", name, _merged(snapshot, customer)
    if request.tags and (tags := snapshot.collections[TAG]):
        for tag in request.tags:
            if (found := tags.get(tag)) is not None and found.HasField("limits"):
                yield f"tag {tag!r}", "tag", tag, found.limits
    proxy = snapshot.collections[GLOBAL_LIMITS].get(PROXY_LIMITS)
    if proxy is not None and proxy.HasField("limits"):
        yield "proxy", "global", "", proxy.limits


def prompt_tokens_by_size(request: InferenceRequest) -> int:
    """The request's prompt tokens as admission estimates them."""
    return max(1, request.body_bytes // BYTES_PER_PROMPT_TOKEN)


def requested_output_tokens(request: InferenceRequest) -> int | None:
    """The output cap the request asks for (max_completion_tokens, max_tokens, max_output_tokens)."""
    body = request.body
    output = body.get("max_completion_tokens") or body.get("max_tokens") or body.get("max_output_tokens")
    if not isinstance(output, int) or isinstance(output, bool) or output <= 0:
        return None
    return output


def compile_plan(request: InferenceRequest) -> LimitPlan:
    """The request's limits, read from the snapshot."""
    rates: list[RateRule] = []
    budgets: list[BudgetRule] = []
    model = request.requested_model or request.model
    for what, kind, entity, limits in _entities(request):
        if limits is None:
            continue
        counter_id = f"{kind}:{entity}"
        rpm, tpm = _optional(limits, "rpm_limit"), _optional(limits, "tpm_limit")
        parallel = _optional(limits, "max_parallel_requests")
        if rpm is not None or tpm is not None or parallel is not None:
            rates.append(RateRule(what, counter_id, rpm, tpm, parallel))
        if kind == "key" and (limits.model_rpm_limit or limits.model_tpm_limit):
            model_rpm = limits.model_rpm_limit.get(model)
            model_tpm = limits.model_tpm_limit.get(model)
            if model_rpm is not None or model_tpm is not None:
                rates.append(
                    RateRule(
                        f"key (model {model})",
                        f"{counter_id}:{model}",
                        None if model_rpm is None else float(model_rpm),
                        None if model_tpm is None else float(model_tpm),
                        None,
                    )
                )
        windows = budget_windows(limits) if kind != "key_group" else ()
        if windows:
            kv_key = totals_key(kind, entity)
            named = tuple((duration, amount, f"{kv_key}|b|{duration}") for duration, amount in windows)
            budgets.append(BudgetRule(what, kind, entity, kv_key, named))
    if not rates and not budgets:
        return NO_LIMITS
    return LimitPlan(tuple(rates), tuple(budgets), any(rule.tpm is not None for rule in rates))


class PlanCache:
    """Plans by (key, model, end user, tags), for the snapshot they were read from."""

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._plans: dict[tuple[str, ...], LimitPlan] = {}

    def plan(self, request: InferenceRequest) -> LimitPlan:
        """The request's plan, compiled at most once per snapshot (and kept on the request, for
        the next hook that asks)."""
        plan = request.limit_plan
        if plan is not None:
            return plan
        snapshot = request.caller.snapshot
        if snapshot is not self._snapshot:
            self._snapshot = snapshot
            self._plans = {}
        customer = request.customer
        model = request.requested_model or request.model
        if customer is None and not request.tags:
            cache_key: tuple[str, ...] = (request.key_hash, model)
        else:
            scope = (
                (customer.customer_id, customer.team_id, customer.organization_id) if customer else ("",) * 3
            )
            cache_key = (request.key_hash, model, *scope, "\n", *request.tags)
        plan = self._plans.get(cache_key)
        if plan is None:
            if len(self._plans) >= PLANS_KEPT:
                self._plans = {}
            plan = self._plans[cache_key] = compile_plan(request)
        request.limit_plan = plan
        return plan
