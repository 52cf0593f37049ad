"""Admin and spend routes: forwarded as they are to the control plane, which authorizes them.

Admin bodies are small: one larger than the cap is refused with a 413 before it is read (or as
soon as it passes the cap), so nobody can make a data plane hold large bodies for the control
plane to refuse.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp
from aiohttp import web

from hydite_common.errors import PayloadTooLargeError, RequestTimeoutError, ServiceUnavailableError

# Hop-by-hop headers (RFC 9110 §7.6.1) and ones aiohttp recomputes.
_DROP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=5)


def _forwardable(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in _DROP_HEADERS}


class ControlPlaneForwarder:
    """Relays a request to the control plane's admin HTTP API and its answer back."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        controlplane_url: str,
        served_methods: Mapping[str, frozenset[str]],
        *,
        max_body_bytes: int,
        body_timeout_seconds: float,
    ) -> None:
        self._session = session
        self._base = controlplane_url.rstrip("/")
        self._served_methods = served_methods
        self._max_body_bytes = max_body_bytes
        self._body_timeout_seconds = body_timeout_seconds

    async def _body(self, request: web.Request) -> bytes:
        """The request body, read no further than the cap and within the body timeout."""
        cap = self._max_body_bytes
        too_large = PayloadTooLargeError(f"admin request bodies may have at most {cap} bytes")
        if request.content_length is not None and request.content_length > cap:
            raise too_large
        body = bytearray()
        try:
            async with asyncio.timeout(self._body_timeout_seconds):
                async for piece in request.content.iter_chunked(64 * 1024):
                    body += piece
                    if len(body) > cap:
                        raise too_large
        except TimeoutError:
            raise RequestTimeoutError("the request body did not arrive in time") from None
        return bytes(body)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Forward any request the data plane does not serve itself."""
        # A path the data plane serves, asked with another method, is a 405 here, not a forward.
        if (methods := self._served_methods.get(request.path)) is not None:
            raise web.HTTPMethodNotAllowed(request.method, sorted(methods))
        body = await self._body(request)
        try:
            async with self._session.request(
                request.method,
                self._base + request.path_qs,
                headers=_forwardable(request.headers),
                data=body or None,
                timeout=FORWARD_TIMEOUT,
                allow_redirects=False,
            ) as upstream:
                payload = await upstream.read()
                return web.Response(
                    body=payload, status=upstream.status, headers=_forwardable(upstream.headers)
                )
        except (aiohttp.ClientError, TimeoutError):
            raise ServiceUnavailableError(
                "the control plane is unreachable; admin routes are unavailable"
            ) from None
