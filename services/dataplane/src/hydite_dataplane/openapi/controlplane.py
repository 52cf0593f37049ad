"""The control plane's admin OpenAPI document, fetched over the forwarding session and kept for a
short time: its routes change only when the control plane is upgraded, so a minute's staleness
costs nothing, and a failed fetch is remembered briefly so that an unreachable control plane is
not asked again by every caller."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson

FETCH_TIMEOUT = aiohttp.ClientTimeout(total=5, sock_connect=2)
KEEP_SECONDS = 60.0
KEEP_FAILURE_SECONDS = 5.0


class ControlPlaneDocument:
    """The control plane's GET /openapi.json, cached; `missing` says why it is absent."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        controlplane_url: str,
        *,
        keep_seconds: float = KEEP_SECONDS,
        keep_failure_seconds: float = KEEP_FAILURE_SECONDS,
    ) -> None:
        self._session = session
        self._url = controlplane_url.rstrip("/") + "/openapi.json"
        self._keep_seconds = keep_seconds
        self._keep_failure_seconds = keep_failure_seconds
        self._lock = asyncio.Lock()
        self._document: dict[str, Any] | None = None
        self._missing: str | None = "not fetched yet"
        self._expires = 0.0

    async def current(self) -> tuple[dict[str, Any] | None, str | None]:
        """(document, None), or (None, why it is unavailable)."""
        if time.monotonic() < self._expires:
            return self._document, self._missing
        async with self._lock:
            if time.monotonic() >= self._expires:  # nobody refreshed it while this one waited
                await self._refresh()
        return self._document, self._missing

    async def _refresh(self) -> None:
        try:
            async with self._session.get(self._url, timeout=FETCH_TIMEOUT, allow_redirects=False) as response:
                payload = await response.read()
                if response.status != 200:
                    raise ValueError(f"the control plane answered {response.status}")
            document = orjson.loads(payload)
            if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
                raise ValueError("the control plane's answer is no OpenAPI document")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # orjson.JSONDecodeError is a ValueError.
            reason = str(exc) if isinstance(exc, ValueError) else "the control plane is unreachable"
            self._document, self._missing = None, reason
            self._expires = time.monotonic() + self._keep_failure_seconds
            return
        self._document, self._missing = document, None
        self._expires = time.monotonic() + self._keep_seconds
