"""Hook slots on the request path, so budgets, guardrails, cooldowns and usage plug in without
touching the pipeline.

- pre-call: after authorization, before any provider is called (budget reservation, guardrails);
  may raise a HyditeError to refuse the request.
- deployment eligibility: narrows the deployments the router may pick (per-deployment limits, cooldown).
- post-call: once per request when it has finished, success or failure (usage, response guardrails).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from hydite_common.errors import HyditeError, ServiceUnavailableError
from hydite_dataplane.request import InferenceRequest, TokenUsage
from hydite_dataplane.snapshot import DeploymentTarget, Snapshot


@dataclass(frozen=True, slots=True)
class CallRecord:
    """How a request ended: where it went, what it used, and whether it worked."""

    target: DeploymentTarget | None
    usage: TokenUsage
    status: str  # "success" | "failure"
    http_status: int
    error_code: str = ""
    usage_estimated: bool = False
    ttft_ms: float = 0.0

    @classmethod
    def failure(cls, target: DeploymentTarget | None, error: HyditeError) -> CallRecord:
        """A request refused or failed before any usage was reported."""
        return cls(target, TokenUsage(), "failure", error.status, error.code)


class PreCallHook(Protocol):
    """Runs after authorization; raising refuses the request."""

    async def before_call(self, request: InferenceRequest, snapshot: Snapshot) -> None:
        """Check or reserve something for this request."""
        ...


class DeploymentFilter(Protocol):
    """Removes deployments that may not take this request now."""

    def eligible(
        self, request: InferenceRequest, deployments: Sequence[DeploymentTarget]
    ) -> Sequence[DeploymentTarget]:
        """The deployments still allowed."""
        ...


class PostCallHook(Protocol):
    """Runs exactly once per authenticated request, when it has finished."""

    def after_call(self, request: InferenceRequest, record: CallRecord) -> None:
        """Record or settle what the request did (must not block)."""
        ...


@dataclass
class Hooks:
    """The hooks registered in each slot, run in order."""

    pre_call: list[PreCallHook] = field(default_factory=list)
    deployment_filters: list[DeploymentFilter] = field(default_factory=list)
    post_call: list[PostCallHook] = field(default_factory=list)

    async def before_call(self, request: InferenceRequest, snapshot: Snapshot) -> None:
        """Run every pre-call hook."""
        for hook in self.pre_call:
            await hook.before_call(request, snapshot)

    def eligible(
        self, request: InferenceRequest, deployments: Sequence[DeploymentTarget]
    ) -> Sequence[DeploymentTarget]:
        """Apply every filter; none left is a 503."""
        for deployment_filter in self.deployment_filters:
            deployments = deployment_filter.eligible(request, deployments)
        if not deployments:
            raise ServiceUnavailableError(f"no deployment of {request.model!r} can take requests right now")
        return deployments

    def after_call(self, request: InferenceRequest, record: CallRecord) -> None:
        """Run every post-call hook, once per request whichever path ends it first."""
        if request.finished:
            return
        request.finished = True
        for hook in self.post_call:
            hook.after_call(request, record)
