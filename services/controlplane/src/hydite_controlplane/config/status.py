"""GET /config/status: each data plane's applied version and lag, like `istioctl proxy-status`,
and the resources this replica left out of the snapshot because their rows cannot be built."""

from __future__ import annotations

from aiohttp import web

from hydite.config.v1 import config_pb2 as pb
from hydite_common.config_types import DATA_PLANE_NODE
from hydite_common.http import json_response
from hydite_controlplane.admin.auth import admin_caller
from hydite_controlplane.appkeys import CACHE, NODE_STATUS, SESSIONS
from hydite_controlplane.config.node_status import is_live
from hydite_controlplane.db import run_sql


async def config_status(request: web.Request) -> web.Response:
    """Head version; per node, acked version, lag, connection and last error; the data planes this
    replica's snapshot lists (at its own version, which may trail the head); quarantined resources."""
    (await admin_caller(request)).require_read()
    cache = request.app[CACHE]
    async with request.app[SESSIONS]() as session:
        # The committed head, not this replica's cache: right after a write the cache may lag.
        head = int(
            (await run_sql(session, ("SELECT coalesce(max(version), 0) FROM config_changes"))).scalar_one()
        )
    nodes = await request.app[NODE_STATUS].all_nodes()
    return json_response(
        {
            "version": head,
            "nodes": [
                {
                    "node_id": n.node_id,
                    "hostname": n.hostname,
                    "connected": is_live(n),
                    "controlplane_id": n.controlplane_id,
                    "acked_version": n.acked_version,
                    "lag": max(head - n.acked_version, 0),
                    "nacked_version": n.nacked_version,
                    "loading": n.loading,
                    "last_error": n.last_error or None,
                    "last_seen": n.last_seen.isoformat(),
                }
                for n in nodes
            ],
            "members": {
                "version": cache.version,
                "nodes": [_member(r) for r in cache.resources_of(DATA_PLANE_NODE)],
            },
            "quarantined": [
                {
                    "type": q.type_url.rsplit(".", 1)[-1],
                    "type_url": q.type_url,
                    "name": q.name,
                    "reason": q.reason,
                    "since": q.since.isoformat(),
                }
                for q in cache.quarantined()
            ],
        }
    )


def _member(resource: pb.Resource) -> dict[str, object]:
    node = pb.DataPlaneNode()
    resource.body.Unpack(node)
    return {"node_id": node.node_id, "hostname": node.hostname, "connected_unix_ms": node.connected_unix_ms}


ROUTES = [web.get("/config/status", config_status)]
