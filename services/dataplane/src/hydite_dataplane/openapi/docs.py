"""GET /docs: Swagger UI for /openapi.json, served only when EXPOSE_DOCS is true, its assets from
the installed swagger-ui-bundle package (never a CDN, so it works offline and leaks nothing)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from hydite_common.errors import NotFoundError

ASSETS: dict[str, str] = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "application/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
"""The files of the bundle the page loads, and their content types (nothing else is served)."""

DOCS_PATH = "/docs"

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Hydite API</title>
<link rel="stylesheet" type="text/css" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  docExpansion: "none",
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
});
</script>
</body>
</html>
"""
"""The page: the bundle's stylesheet and script from this gateway, tags folded (there are hundreds
of operations), and no validator badge (it would send the document to swagger.io)."""


class SwaggerUI:
    """Serves the page and its assets from the bundle directory, when docs are exposed."""

    def __init__(self, bundle_dir: Path, *, exposed: bool) -> None:
        self._bundle_dir = bundle_dir
        self._exposed = exposed

    def _require_exposed(self, request: web.Request) -> None:
        if not self._exposed:
            raise NotFoundError(f"no route for {request.method} {request.path}")

    async def page(self, request: web.Request) -> web.Response:
        """GET /docs."""
        self._require_exposed(request)
        return web.Response(text=PAGE, content_type="text/html")

    async def asset(self, request: web.Request) -> web.StreamResponse:
        """GET /docs/{asset}: one of ASSETS."""
        self._require_exposed(request)
        name = request.match_info["asset"]
        content_type = ASSETS.get(name)
        if content_type is None:
            raise NotFoundError(f"no route for {request.method} {request.path}")
        return web.FileResponse(self._bundle_dir / name, headers={"Content-Type": content_type})
