"""GET /config/status: each data plane's applied version and lag, like `istioctl proxy-status`."""

from __future__ import annotations

from aiohttp import web

from hydite_common.http import json_response
from hydite_controlplane.admin.auth import admin_caller
from hydite_controlplane.appkeys import CACHE, NODE_STATUS


async def config_status(request: web.Request) -> web.Response:
    """Head version and, per node, acked version, lag, connection and last error."""
    (await admin_caller(request)).require_read()
    head = request.app[CACHE].version
    nodes = await request.app[NODE_STATUS].all_nodes()
    return json_response(
        {
            "version": head,
            "nodes": [
                {
                    "node_id": n.node_id,
                    "hostname": n.hostname,
                    "connected": n.connected,
                    "controlplane_id": n.controlplane_id,
                    "acked_version": n.acked_version,
                    "lag": max(head - n.acked_version, 0),
                    "nacked_version": n.nacked_version,
                    "last_error": n.last_error or None,
                    "last_seen": n.last_seen.isoformat(),
                }
                for n in nodes
            ],
        }
    )


ROUTES = [web.get("/config/status", config_status)]
