"""The hook slots run in order, an empty eligible set is a 503, and a request is settled once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from hydite_common.errors import RateLimitError, ServiceUnavailableError
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.hooks import Hooks
from hydite_dataplane.request import InferenceRequest, Outcome, TokenUsage, outcome_of

RequestBuilder = Callable[..., InferenceRequest]
TargetBuilder = Callable[..., DeploymentTarget]


class Refuse:
    """A pre-call hook that refuses everything."""

    async def before_call(self, request: InferenceRequest) -> None:
        """Refuse with a 429."""
        raise RateLimitError("budget exhausted")


class Hold:
    """A pre-call hook that reserves something and remembers how it was settled."""

    def __init__(self) -> None:
        self.settled: list[Outcome] = []

    async def before_call(self, request: InferenceRequest) -> Hold:
        """Reserve; this object is the reservation."""
        return self

    def settle(self, outcome: Outcome) -> None:
        """Remember the outcome."""
        self.settled.append(outcome)


class DropFirst:
    """A deployment filter that drops the first deployment."""

    def eligible(
        self, request: InferenceRequest, deployments: Sequence[DeploymentTarget]
    ) -> Sequence[DeploymentTarget]:
        """All but the first."""
        return deployments[1:]


class Remember:
    """A post-call hook that keeps what it saw."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []

    def after_call(self, request: InferenceRequest, outcome: Outcome) -> None:
        """Remember the outcome."""
        self.outcomes.append(outcome)


class Redact:
    """A before-response and stream-event hook that rewrites what the client gets."""

    async def before_response(self, request: InferenceRequest, body: dict[str, Any]) -> dict[str, Any]:
        """Replace the answer's text."""
        return {**body, "text": "[redacted]"}

    def on_stream_event(self, request: InferenceRequest, event: bytes) -> bytes:
        """Drop events that mention a secret."""
        return b"" if b"secret" in event else event


async def test_pre_call_hook_can_refuse_and_earlier_reservations_are_settled(
    make_request: RequestBuilder,
) -> None:
    """A pre-call hook's error propagates; what hooks before it reserved is still settled once."""
    hold = Hold()
    call = Hooks(pre_call=[hold, Refuse()]).start(make_request())
    with pytest.raises(RateLimitError):
        await call.before_call()
    failure = outcome_of(None, error=RateLimitError("budget exhausted"))
    call.after_call(failure)
    call.after_call(failure)
    assert hold.settled == [failure]


def test_filters_narrow_and_empty_is_503(make_request: RequestBuilder, make_target: TargetBuilder) -> None:
    """Filters apply in order; when none is left the request is a 503."""
    hooks = Hooks(deployment_filters=[DropFirst()])
    assert [
        d.deployment_id for d in hooks.eligible(make_request(), [make_target("a"), make_target("b")])
    ] == ["b"]
    with pytest.raises(ServiceUnavailableError):
        hooks.eligible(make_request(), [make_target("a")])


async def test_reservations_then_post_call_hooks_each_see_the_outcome_once(
    make_request: RequestBuilder,
) -> None:
    """Every reservation is settled and every post-call hook runs once, however often after_call runs."""
    hold, first, second = Hold(), Remember(), Remember()
    call = Hooks(pre_call=[hold], post_call=[first, second]).start(make_request())
    await call.before_call()
    outcome = outcome_of(None, usage=TokenUsage(1, 2))
    call.after_call(outcome)
    call.after_call(outcome_of(None, error=RateLimitError("late")))
    assert hold.settled == [outcome] and first.outcomes == [outcome] and second.outcomes == [outcome]


async def test_response_and_stream_event_hooks_rewrite_what_the_client_sees(
    make_request: RequestBuilder,
) -> None:
    """Before-response hooks may replace a complete answer; stream-event hooks may drop an event."""
    call = Hooks(before_response=[Redact()], stream_events=[Redact()]).start(make_request())
    assert await call.before_response({"text": "hi", "id": 1}) == {"text": "[redacted]", "id": 1}
    assert call.on_stream_event(b"data: secret\n\n") == b""
    assert call.on_stream_event(b"data: fine\n\n") == b"data: fine\n\n"


def test_outcome_of_is_the_one_shape_of_every_ending(make_target: TargetBuilder) -> None:
    """Failures carry the error's status and code; a vanished client is a success with its code."""
    target = make_target()
    failed = outcome_of(target, error=RateLimitError("x"))
    assert (failed.status, failed.http_status, failed.error_code) == ("failure", 429, "rate_limit_exceeded")
    gone = outcome_of(target, http_status=200, client_gone=True)
    assert (gone.status, gone.http_status, gone.error_code) == ("success", 200, "client_disconnected")
