"""Credentials that are not a fixed key: cloud tokens (Entra ID, Google service accounts) and
request signing (AWS SigV4). A provider's `CallAuthorizer` finishes a built call; `TokenCache`
keeps one token per credential, fetched once (concurrent callers share the fetch) and refreshed in
the background before it expires, so only the very first call of a credential waits for it.

A fetch that fails is a gateway error naming the deployment (502, or 401 when the identity
provider refused the credential), never a 500; the next call tries again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Hashable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from hydite_common.errors import HyditeError, UpstreamError
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.upstream.transport import UpstreamCall

log = logging.getLogger(__name__)

REFRESH_MARGIN_SECONDS = 300.0
"""A token this close to its expiry is refreshed in the background (and still used meanwhile)."""
MAX_CACHED_CREDENTIALS = 10_000


class CallAuthorizer(Protocol):
    """Adds what a provider's auth needs to a built call (headers, a signature)."""

    async def authorize(self, call: UpstreamCall, target: DeploymentTarget) -> UpstreamCall:
        """The call, authorized for target's credential."""
        ...


@dataclass(frozen=True, slots=True)
class Token:
    """A credential's current secret (a bearer token, a set of temporary keys) and when it ends."""

    value: str
    expires_at: float
    """time.monotonic() seconds."""


Key = TypeVar("Key", bound=Hashable)


class TokenCache(Generic[Key]):
    """One fresh token per credential key, fetched by `fetch(key)`."""

    def __init__(
        self,
        fetch: Callable[[Key], Coroutine[Any, Any, Token]],
        *,
        refresh_margin: float = REFRESH_MARGIN_SECONDS,
    ) -> None:
        self._fetch = fetch
        self._margin = refresh_margin
        self._tokens: dict[Key, Token] = {}
        self._fetching: dict[Key, asyncio.Task[Token]] = {}

    async def get(self, key: Key, deployment_id: str) -> Token:
        """A token for key that is still valid: the cached one (refreshing it in the background
        when it nears its end), else one fetched now."""
        token = self._tokens.get(key)
        now = time.monotonic()
        if token is not None and now < token.expires_at:
            if now >= token.expires_at - self._margin:
                _ = self._start_fetch(key)  # refreshed behind this call
            return token
        try:
            return await asyncio.shield(self._start_fetch(key))
        except HyditeError:
            raise
        except Exception as exc:
            raise UpstreamError(
                f"could not obtain credentials for deployment {deployment_id!r}: {type(exc).__name__}",
                code="upstream_credentials_unavailable",
            ) from None

    def _start_fetch(self, key: Key) -> asyncio.Task[Token]:
        running = self._fetching.get(key)
        if running is not None:
            return running
        task: asyncio.Task[Token] = asyncio.get_running_loop().create_task(self._fetch(key))
        self._fetching[key] = task
        task.add_done_callback(lambda done: self._settle(key, done))
        return task

    def _settle(self, key: Key, done: asyncio.Task[Token]) -> None:
        self._fetching.pop(key, None)
        if done.cancelled():
            return
        error = done.exception()
        if error is not None:
            # A failed background refresh keeps the old token until it expires; logged, not raised.
            log.warning("credential refresh failed: %s", type(error).__name__)
            return
        if len(self._tokens) >= MAX_CACHED_CREDENTIALS and key not in self._tokens:
            self._tokens.pop(next(iter(self._tokens)))
        self._tokens[key] = done.result()
