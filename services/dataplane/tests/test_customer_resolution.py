"""End-user ids are per tenant: `user` resolves to the caller's team's end user, else its
organization's, else a global one, and each resolved end user has counters of its own."""

from __future__ import annotations

import time

import pytest

from hydite.config.v1 import config_pb2 as pb
from hydite_common.config_types import customer_name
from hydite_common.credentials import CredentialCipher
from hydite_common.errors import RateLimitError
from hydite_dataplane.config.decode import snapshot_from_resources
from hydite_dataplane.config.snapshot import Snapshot
from hydite_dataplane.hooks import Hooks
from hydite_dataplane.inbound.openai import resolve_customer
from hydite_dataplane.limits.limiter import RateLimiter
from hydite_dataplane.limits.shares import ClusterShares
from hydite_dataplane.request import Caller, InferenceRequest

CIPHER = CredentialCipher("test-salt")


def _snapshot(*customers: pb.Customer, teams: tuple[pb.Team, ...] = ()) -> Snapshot:
    resources = []
    for message, name in [
        *((c, customer_name(c.customer_id, c.team_id, c.organization_id)) for c in customers),
        *((t, t.team_id) for t in teams),
    ]:
        packed = pb.Resource(name=name)
        packed.body.Pack(message)
        resources.append(packed)
    return snapshot_from_resources(1, resources, CIPHER)


TEAM_A = pb.Customer(customer_id="e1", team_id="team-a", alias="a")
TEAM_B = pb.Customer(customer_id="e1", team_id="team-b", alias="b")
ORG = pb.Customer(customer_id="e1", organization_id="org-1", alias="org")
GLOBAL = pb.Customer(customer_id="e1", alias="global")
ORG_TEAM = pb.Team(team_id="team-a", organization_id="org-1")


def _alias(snapshot: Snapshot, key: pb.VirtualKey) -> str | None:
    customer = resolve_customer(Caller.of(snapshot, "h", key), "e1")
    return customer.alias if customer is not None else None


def test_names_are_distinct_per_scope_and_escape_the_separator() -> None:
    """team:, org: and bare names; a scope id holding ':' cannot collide with another split."""
    assert customer_name("e1", team_id="t") == "team:t:e1"
    assert customer_name("e1", organization_id="o") == "org:o:e1"
    assert customer_name("e1") == "e1"
    assert customer_name("c", team_id="a:b") != customer_name("b:c", team_id="a")


def test_the_team_end_user_comes_first_then_the_organization_then_global() -> None:
    """With all three present the team's wins; without it the organization's; then the global one."""
    team_key = pb.VirtualKey(team_id="team-a")
    assert _alias(_snapshot(TEAM_A, ORG, GLOBAL, teams=(ORG_TEAM,)), team_key) == "a"
    assert _alias(_snapshot(ORG, GLOBAL, teams=(ORG_TEAM,)), team_key) == "org"
    assert _alias(_snapshot(GLOBAL, teams=(ORG_TEAM,)), team_key) == "global"
    assert _alias(_snapshot(ORG, GLOBAL), pb.VirtualKey(organization_id="org-1")) == "org"


def test_another_tenants_end_user_is_never_used() -> None:
    """A key of team B, or of no team, never gets team A's or an organization's end user."""
    snapshot = _snapshot(TEAM_A, ORG)
    assert _alias(snapshot, pb.VirtualKey(team_id="team-b")) is None
    assert _alias(snapshot, pb.VirtualKey()) is None
    assert _alias(snapshot, pb.VirtualKey(organization_id="org-2")) is None
    assert _alias(_snapshot(TEAM_A, TEAM_B, GLOBAL), pb.VirtualKey(team_id="team-b")) == "b"


def _request(snapshot: Snapshot, key: pb.VirtualKey, key_hash: str) -> InferenceRequest:
    caller = Caller.of(snapshot, key_hash, key)
    return InferenceRequest(
        request_id="r", operation="chat", wire_format="openai", model="m", requested_model="m", body={},
        stream=False, caller=caller, start_time=time.time(), start_perf=time.perf_counter(),
        customer_id="e1", customer=resolve_customer(caller, "e1"),
    )  # fmt: skip


async def test_end_users_of_one_id_in_two_teams_have_separate_counters() -> None:
    """Team A's e1 using its one request a minute leaves team B's e1 and the global e1 their own."""
    limited = pb.Limits(rpm_limit=1)
    snapshot = _snapshot(
        pb.Customer(customer_id="e1", team_id="team-a", limits=limited),
        pb.Customer(customer_id="e1", team_id="team-b", limits=limited),
        pb.Customer(customer_id="e1", limits=limited),
    )
    limiter = RateLimiter(ClusterShares("node-a"))
    keys = {"a": pb.VirtualKey(team_id="team-a"), "b": pb.VirtualKey(team_id="team-b"), "g": pb.VirtualKey()}
    for name, key in keys.items():
        await Hooks(pre_call=[limiter]).start(_request(snapshot, key, f"hash-{name}")).before_call()
    for name, key in keys.items():
        with pytest.raises(RateLimitError):
            await Hooks(pre_call=[limiter]).start(_request(snapshot, key, f"hash-{name}-2")).before_call()
