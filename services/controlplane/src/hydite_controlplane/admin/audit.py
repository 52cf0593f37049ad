"""GET /audit: the audit trail of admin writes, newest first."""

from __future__ import annotations

from aiohttp import web

from hydite_controlplane.admin.auth import admin_caller
from hydite_controlplane.admin.responses import json_response
from hydite_controlplane.admin.validation import page_of
from hydite_controlplane.appkeys import SESSIONS
from hydite_controlplane.store.audit import list_audit


async def audit(request: web.Request) -> web.Response:
    """?object_type=&object_id=&page=&page_size=: who changed what, with before/after (secrets masked)."""
    caller = await admin_caller(request)
    caller.require_read()
    page, size = page_of(request, size_param="page_size", default_size=50)
    async with request.app[SESSIONS]() as session:
        entries = await list_audit(
            session=session,
            object_type=request.query.get("object_type"),
            object_id=request.query.get("object_id"),
            limit=size,
            offset=(page - 1) * size,
        )
    return json_response(
        {
            "page": page,
            "page_size": size,
            "entries": [
                {
                    "id": e.id,
                    "ts": e.ts.isoformat(),
                    "actor": e.actor,
                    "action": e.action,
                    "object_type": e.object_type,
                    "object_id": e.object_id,
                    "before": e.before,
                    "after": e.after,
                }
                for e in entries
            ],
        }
    )


ROUTES = [web.get("/audit", audit)]
