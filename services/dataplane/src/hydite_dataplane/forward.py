"""Admin and spend routes: forwarded as they are to the control plane, which authorizes them."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from aiohttp import web

from hydite_common.errors import ServiceUnavailableError

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
    ) -> None:
        self._session = session
        self._base = controlplane_url.rstrip("/")
        self._served_methods = served_methods

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Forward any request the data plane does not serve itself."""
        # A path the data plane serves, asked with another method, is a 405 here, not a forward.
        if (methods := self._served_methods.get(request.path)) is not None:
            raise web.HTTPMethodNotAllowed(request.method, sorted(methods))
        body = await request.read()
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
