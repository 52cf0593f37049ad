"""Hook slots on the request path, so budgets, guardrails, cooldowns and usage plug in without
touching the pipeline. A slot with nothing registered costs nothing.

- pre-call: after authorization, before any provider is called (limits, budget reservation,
  guardrails); may raise a HyditeError to refuse, and returns a Reservation that is settled
  with the request's Outcome when it ends.
- deployment eligibility: narrows the deployments the router may pick (per-deployment limits, cooldown).
- before-response (async): sees a complete answer before the client does and may replace it or
  refuse it (response guardrails).
- stream event: sees every event of a streamed answer before the client does and may rewrite or
  drop it.
- post-call: once per request when it has finished, success or failure (usage, metrics, traces).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from hydite_common.errors import ServiceUnavailableError
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.request import InferenceRequest, Outcome


class Reservation(Protocol):
    """What a pre-call hook holds for one request until it ends."""

    def settle(self, outcome: Outcome) -> None:
        """Release or settle what was held, knowing how the request ended (must not block)."""
        ...


class PreCallHook(Protocol):
    """Runs after authorization; raising refuses the request."""

    async def before_call(self, request: InferenceRequest) -> Reservation | None:
        """Check or reserve something for this request; what is reserved is settled at its end."""
        ...


class DeploymentFilter(Protocol):
    """Removes deployments that may not take this request now."""

    def eligible(
        self, request: InferenceRequest, deployments: Sequence[DeploymentTarget]
    ) -> Sequence[DeploymentTarget]:
        """The deployments still allowed."""
        ...


class ResponseHook(Protocol):
    """Sees a complete answer (in the client's wire format) before it is sent."""

    async def before_response(self, request: InferenceRequest, body: dict[str, Any]) -> dict[str, Any]:
        """The answer to send (body itself when unchanged); raising refuses it."""
        ...


class StreamEventHook(Protocol):
    """Sees each event of a streamed answer (in the client's wire format) before it is sent."""

    def on_stream_event(self, request: InferenceRequest, event: bytes) -> bytes:
        """The event to send instead (b"" drops it)."""
        ...


class PostCallHook(Protocol):
    """Runs exactly once per authenticated request, when it has finished."""

    def after_call(self, request: InferenceRequest, outcome: Outcome) -> None:
        """Record what the request did (must not block)."""
        ...


@dataclass
class Hooks:
    """The hooks registered in each slot, run in order."""

    pre_call: list[PreCallHook] = field(default_factory=list)
    deployment_filters: list[DeploymentFilter] = field(default_factory=list)
    before_response: list[ResponseHook] = field(default_factory=list)
    stream_events: list[StreamEventHook] = field(default_factory=list)
    post_call: list[PostCallHook] = field(default_factory=list)

    def start(self, request: InferenceRequest) -> CallHooks:
        """The hooks of one request, before anything is reserved for it."""
        return CallHooks(self, request)

    def eligible(
        self, request: InferenceRequest, deployments: Sequence[DeploymentTarget]
    ) -> Sequence[DeploymentTarget]:
        """Apply every filter; none left is a 503."""
        for deployment_filter in self.deployment_filters:
            deployments = deployment_filter.eligible(request, deployments)
        if not deployments:
            raise ServiceUnavailableError(f"no deployment of {request.model!r} can take requests right now")
        return deployments


class CallHooks:
    """One request's pass through the hook slots: what its pre-call hooks reserved, settled once."""

    __slots__ = ("_reservations", "_settled", "hooks", "request")

    def __init__(self, hooks: Hooks, request: InferenceRequest) -> None:
        self.hooks = hooks
        self.request = request
        self._reservations: list[Reservation] = []
        self._settled = False

    async def before_call(self) -> None:
        """Run every pre-call hook, keeping what each reserved (a refusal keeps the earlier ones')."""
        for hook in self.hooks.pre_call:
            reservation = await hook.before_call(self.request)
            if reservation is not None:
                self._reservations.append(reservation)

    async def before_response(self, body: dict[str, Any]) -> dict[str, Any]:
        """The answer after every before-response hook."""
        for hook in self.hooks.before_response:
            body = await hook.before_response(self.request, body)
        return body

    def on_stream_event(self, event: bytes) -> bytes:
        """The event after every stream-event hook."""
        for hook in self.hooks.stream_events:
            if not event:
                break
            event = hook.on_stream_event(self.request, event)
        return event

    def after_call(self, outcome: Outcome) -> None:
        """Settle every reservation, then run every post-call hook: once, whichever exit comes first."""
        if self._settled:
            return
        self._settled = True
        for reservation in self._reservations:
            reservation.settle(outcome)
        for hook in self.hooks.post_call:
            hook.after_call(self.request, outcome)
