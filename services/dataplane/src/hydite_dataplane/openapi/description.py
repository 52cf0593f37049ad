"""GET /openapi.json and GET /routes: the data plane's own description joined with the control
plane's (fetched and cached by ControlPlaneDocument); without the control plane, the data plane's
part alone, saying so."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from hydite_common.http import JSON_HEADERS, json_response
from hydite_dataplane.openapi.controlplane import ControlPlaneDocument
from hydite_dataplane.openapi.document import dataplane_document, merged, route_list
from hydite_dataplane.routes import ROUTES


class ApiDescription:
    """Answers /openapi.json and /routes; the merged document is serialised once per control
    plane document it was built from."""

    def __init__(self, controlplane: ControlPlaneDocument) -> None:
        self._controlplane = controlplane
        self._dataplane: dict[str, Any] | None = None
        # What the body was built from, held so that identity compares (a new fetch is a new dict).
        self._built_from: tuple[dict[str, Any] | None, str | None] | None = None
        self._body = b""

    def dataplane(self) -> dict[str, Any]:
        """The data plane's own document (built on first use: it reads the vendored schemas)."""
        if self._dataplane is None:
            self._dataplane = dataplane_document()
        return self._dataplane

    async def openapi_json(self, _: web.Request) -> web.Response:
        """GET /openapi.json: the whole surface as an OpenAPI 3.1 document (no key needed)."""
        controlplane, missing = await self._controlplane.current()
        built = self._built_from
        if built is None or built[0] is not controlplane or built[1] != missing:
            self._body = orjson.dumps(merged(self.dataplane(), controlplane, missing))
            self._built_from = (controlplane, missing)
        return web.Response(body=self._body, headers=JSON_HEADERS)

    async def routes(self, _: web.Request) -> web.Response:
        """GET /routes: every route with its methods and name (LiteLLM's shape), the data plane's and
        the control plane's; `controlplane_included` is false when the control plane's are missing."""
        controlplane, missing = await self._controlplane.current()
        answer: dict[str, Any] = {
            "routes": route_list(ROUTES, controlplane),
            "controlplane_included": controlplane is not None,
        }
        if missing is not None:
            answer["controlplane_missing"] = missing
        return json_response(answer)
