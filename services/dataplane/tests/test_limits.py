"""Rate limits: sliding one-minute windows per key, model, user, team, organization and customer."""

from __future__ import annotations

import time

import pytest

from hydite.config.v1 import config_pb2 as pb
from hydite_common.credentials import CredentialCipher
from hydite_common.errors import RateLimitError
from hydite_dataplane.config.decode import snapshot_from_resources
from hydite_dataplane.config.snapshot import Snapshot
from hydite_dataplane.hooks import CallHooks, Hooks
from hydite_dataplane.limits.limiter import RateLimiter
from hydite_dataplane.limits.shares import ClusterShares
from hydite_dataplane.limits.windows import RateWindow
from hydite_dataplane.request import Caller, InferenceRequest, TokenUsage, outcome_of

CIPHER = CredentialCipher("test-salt")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _snapshot(*owners: pb.User | pb.Team | pb.Organization | pb.Customer) -> Snapshot:
    resources = []
    for owner in owners:
        packed = pb.Resource(name=getattr(owner, owner.DESCRIPTOR.fields[0].name))
        packed.body.Pack(owner)
        resources.append(packed)
    return snapshot_from_resources(1, resources, CIPHER)


def _request(
    key: pb.VirtualKey,
    model: str = "m",
    customer: str = "",
    snapshot: Snapshot | None = None,
    key_hash: str = "hash-1",
) -> InferenceRequest:
    snapshot = snapshot or _snapshot()
    return InferenceRequest(
        request_id="r",
        operation="chat",
        wire_format="openai",
        model=model,
        requested_model=model,
        body={},
        stream=False,
        caller=Caller.of(snapshot, key_hash, key),
        start_time=time.time(),
        start_perf=time.perf_counter(),
        customer_id=customer,
        customer=snapshot.customers.get(customer) if customer else None,
    )


def _limiter(clock: Clock) -> RateLimiter:
    """A limiter on one data plane alone (no peers: it holds every limit whole)."""
    return RateLimiter(ClusterShares("node-a", clock=clock), clock)


def _finish(call: CallHooks, tokens: int = 0) -> None:
    call.after_call(outcome_of(None, usage=TokenUsage(prompt_tokens=tokens)))


async def _admit(limiter: RateLimiter, request: InferenceRequest) -> CallHooks:
    """The request through the pre-call slot, as the pipeline runs it."""
    call = Hooks(pre_call=[limiter]).start(request)
    await call.before_call()
    return call


async def test_rpm_refuses_the_request_past_the_limit_with_retry_after() -> None:
    """Two requests a minute: the third in the same minute is a 429 naming the limit."""
    clock = Clock()
    limiter = _limiter(clock)
    key = pb.VirtualKey(limits=pb.Limits(rpm_limit=2))
    for _ in range(2):
        _finish(await _admit(limiter, _request(key)))
    with pytest.raises(RateLimitError) as refused:
        await _admit(limiter, _request(key))
    assert refused.value.code == "rpm_limit_exceeded" and "2 requests per minute" in refused.value.message
    assert 1 <= int(refused.value.headers["retry-after"]) <= 60


async def test_the_window_slides() -> None:
    """Requests of the previous minute count in proportion to how much of it is still in the last 60 s."""
    clock = Clock()
    limiter = _limiter(clock)
    key = pb.VirtualKey(limits=pb.Limits(rpm_limit=10))
    for _ in range(10):
        _finish(await _admit(limiter, _request(key)))
    clock.now += 60  # a new minute: the previous one still weighs fully
    with pytest.raises(RateLimitError):
        await _admit(limiter, _request(key))
    clock.now += 30  # half of it has slid out: 5 of 10 are still counted, so 5 more fit
    for _ in range(5):
        _finish(await _admit(limiter, _request(key)))
    with pytest.raises(RateLimitError):
        await _admit(limiter, _request(key))
    clock.now += 120  # two quiet minutes forget everything
    for _ in range(10):
        _finish(await _admit(limiter, _request(key)))


async def test_tpm_counts_reported_tokens() -> None:
    """Tokens count when the request finishes; once the minute's tokens reach the limit, 429."""
    clock = Clock()
    limiter = _limiter(clock)
    key = pb.VirtualKey(limits=pb.Limits(tpm_limit=100))
    first = await _admit(limiter, _request(key))
    _finish(first, tokens=60)
    second = await _admit(limiter, _request(key))
    _finish(second, tokens=60)
    with pytest.raises(RateLimitError) as refused:
        await _admit(limiter, _request(key))
    assert refused.value.code == "tpm_limit_exceeded"
    clock.now += 121
    await _admit(limiter, _request(key))


async def test_parallel_requests_are_slots_released_once() -> None:
    """max_parallel_requests counts requests in flight; finishing twice releases once."""
    limiter = _limiter(Clock())
    key = pb.VirtualKey(limits=pb.Limits(max_parallel_requests=1))
    first = await _admit(limiter, _request(key))
    with pytest.raises(RateLimitError) as refused:
        await _admit(limiter, _request(key))
    assert refused.value.code == "max_parallel_requests_exceeded"
    _finish(first)
    _finish(first)
    second = await _admit(limiter, _request(key))
    with pytest.raises(RateLimitError):
        await _admit(limiter, _request(key))
    _finish(second)


async def test_a_refusal_uses_up_no_other_limit() -> None:
    """A request refused by its team's limit is not counted against its key."""
    limiter = _limiter(Clock())
    key = pb.VirtualKey(team_id="t", limits=pb.Limits(rpm_limit=3))
    team = pb.Team(team_id="t", limits=pb.Limits(rpm_limit=1))
    snapshot = _snapshot(team)
    await _admit(limiter, _request(key, snapshot=snapshot))
    for _ in range(5):
        with pytest.raises(RateLimitError, match="team"):
            await _admit(limiter, _request(key, snapshot=snapshot))
    other_team = _snapshot()
    for _ in range(2):
        await _admit(limiter, _request(key, snapshot=other_team))


async def test_owner_and_customer_limits_apply() -> None:
    """User, organization and customer limits each refuse once reached."""
    snapshot = _snapshot(
        pb.User(user_id="u", limits=pb.Limits(rpm_limit=1)),
        pb.Organization(organization_id="o", limits=pb.Limits(rpm_limit=1)),
        pb.Customer(customer_id="c", limits=pb.Limits(rpm_limit=1)),
    )
    for key, customer, kind in (
        (pb.VirtualKey(user_id="u"), "", "user"),
        (pb.VirtualKey(organization_id="o"), "", "organization"),
        (pb.VirtualKey(), "c", "customer"),
    ):
        limiter = _limiter(Clock())
        await _admit(limiter, _request(key, customer=customer, snapshot=snapshot))
        with pytest.raises(RateLimitError, match=kind):
            await _admit(limiter, _request(key, customer=customer, snapshot=snapshot))


async def test_per_model_limits_within_a_key() -> None:
    """model_rpm_limit limits one model; the key's other models are not affected."""
    limiter = _limiter(Clock())
    key = pb.VirtualKey(limits=pb.Limits(model_rpm_limit={"gpt-4o": 1}))
    await _admit(limiter, _request(key, model="gpt-4o"))
    with pytest.raises(RateLimitError, match="gpt-4o"):
        await _admit(limiter, _request(key, model="gpt-4o"))
    for _ in range(3):
        await _admit(limiter, _request(key, model="gpt-4o-mini"))


async def test_a_zero_limit_refuses_everything_and_no_limit_counts_nothing() -> None:
    """rpm_limit 0 is set and refuses; a key without limits keeps no counters."""
    limiter = _limiter(Clock())
    with pytest.raises(RateLimitError):
        await _admit(limiter, _request(pb.VirtualKey(limits=pb.Limits(rpm_limit=0))))
    unlimited = _limiter(Clock())
    for _ in range(100):
        _finish(await _admit(unlimited, _request(pb.VirtualKey())))
    assert unlimited.tracked_entities == 0


async def test_idle_counters_are_forgotten() -> None:
    """Entities idle for two windows leave memory; one with a request in flight stays."""
    clock = Clock()
    limiter = _limiter(clock)
    limited = pb.Limits(rpm_limit=100)
    _finish(await _admit(limiter, _request(pb.VirtualKey(limits=limited))))
    await _admit(limiter, _request(pb.VirtualKey(limits=limited), key_hash="hash-2"))
    assert limiter.tracked_entities == 2
    clock.now += 200
    await _admit(limiter, _request(pb.VirtualKey(limits=limited), key_hash="hash-3"))
    assert limiter.tracked_entities == 2  # hash-2 (in flight) and hash-3


def test_retry_after_is_when_the_sliding_count_drops_below_the_limit() -> None:
    """Half a minute in, with 10 of the previous minute and none now, a limit of 4 frees in 6 s."""
    window = RateWindow(0.0)
    carried = 0.5
    assert window.seconds_until_below(4, 0, 10, carried) == 6
    assert window.seconds_until_below(5, 5, 0, carried) == 30


async def test_the_organization_of_a_keys_team_limits_it() -> None:
    """A team key without an organization of its own counts against its team's organization."""
    limiter = _limiter(Clock())
    snapshot = _snapshot(
        pb.Team(team_id="t", organization_id="o"),
        pb.Organization(organization_id="o", limits=pb.Limits(rpm_limit=1)),
    )
    await _admit(limiter, _request(pb.VirtualKey(team_id="t"), snapshot=snapshot))
    with pytest.raises(RateLimitError, match="organization"):
        await _admit(limiter, _request(pb.VirtualKey(team_id="t"), snapshot=snapshot, key_hash="hash-2"))
