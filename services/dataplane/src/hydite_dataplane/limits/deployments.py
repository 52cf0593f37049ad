"""Per-deployment limits (litellm_params `rpm` / `tpm`): the router sends a request to another
deployment of the group rather than past one's limit, so the provider never has to answer 429.
Counted per attempt (retries and fallbacks too) in this replica's share of each deployment's
limit; tokens when the request ends, from its usage. Every deployment at its limit: a 429 saying
when one frees up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from hydite_common.errors import HyditeError, RateLimitError
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.limits.shares import UNIT_SLACK, ClusterShares
from hydite_dataplane.limits.windows import RateWindow
from hydite_dataplane.request import InferenceRequest, Outcome


class DeploymentLimiter:
    """A deployment filter, attempt observer and post-call hook in one."""

    def __init__(self, shares: ClusterShares, clock: Callable[[], float] = time.monotonic) -> None:
        self._shares = shares
        self._clock = clock
        self._windows: dict[str, RateWindow] = {}

    def _window(self, deployment_id: str, now: float) -> RateWindow:
        window = self._windows.get(deployment_id)
        if window is None:
            window = self._windows[deployment_id] = RateWindow(now)
        return window

    def _wait(self, target: DeploymentTarget, now: float) -> int | None:
        """None when target has room for one more request now; else seconds until it should."""
        window = self._window(target.deployment_id, now)
        carried = window.roll(now)
        shares = self._shares
        deployment_id = target.deployment_id
        if target.rpm is not None:
            share = shares.share(
                f"deployment:{deployment_id}|r", target.rpm, lambda: window.requests_in_window(self._clock())
            )
            allowed = shares.fraction(share) * target.rpm + UNIT_SLACK
            if window.previous_requests * carried + window.requests + 1 > allowed:
                share.deficit += 1
                return window.seconds_until_below(allowed, window.requests, window.previous_requests, carried)
        if target.tpm is not None:
            share = shares.share(
                f"deployment:{deployment_id}|t", target.tpm, lambda: window.tokens_in_window(self._clock())
            )
            allowed = shares.fraction(share) * target.tpm + UNIT_SLACK
            if window.previous_tokens * carried + window.tokens >= allowed:
                share.deficit += 1
                return window.seconds_until_below(allowed, window.tokens, window.previous_tokens, carried)
        return None

    def eligible(
        self, request: InferenceRequest, deployments: Sequence[DeploymentTarget]
    ) -> Sequence[DeploymentTarget]:
        """The deployments with room; a 429 when every limited one is full and no other is left."""
        if all(target.rpm is None and target.tpm is None for target in deployments):
            return deployments
        now = self._clock()
        waits: list[int] = []
        kept: list[DeploymentTarget] = []
        for target in deployments:
            if (target.rpm is None and target.tpm is None) or (wait := self._wait(target, now)) is None:
                kept.append(target)
            else:
                waits.append(wait)
        if not kept:
            wait = min(waits)
            raise RateLimitError(
                f"every deployment of {request.model!r} is at its rate limit; retry in {wait} s",
                code="rate_limit_exceeded",
                headers={"retry-after": str(wait)},
            )
        return kept

    def attempt_started(self, target: DeploymentTarget) -> None:
        """Count the attempt on its deployment."""
        if target.rpm is None and target.tpm is None:
            return
        self._window(target.deployment_id, self._clock()).requests += 1

    def attempt_ended(self, target: DeploymentTarget, seconds: float, error: HyditeError | None) -> None:
        """Tokens are counted when the request ends (its usage is known then)."""

    def after_call(self, request: InferenceRequest, outcome: Outcome) -> None:
        """Count the tokens of the request on the deployment that answered it."""
        target = outcome.target
        if target is None or target.tpm is None:
            return
        usage = outcome.usage
        self._window(target.deployment_id, self._clock()).tokens += (
            usage.prompt_tokens + usage.completion_tokens
        )
