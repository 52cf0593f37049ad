"""Who is calling an admin route."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from aiohttp import web

from hydite_common.errors import AuthenticationError, PermissionDeniedError
from hydite_common.keys import key_from_headers


@dataclass(frozen=True, slots=True)
class AdminCaller:
    """The authenticated caller of an admin route."""

    identity: str  # what the audit trail records; never the key itself


def require_master_key(request: web.Request, master_key: str) -> AdminCaller:
    """Admit only the master key (OpenAI-shaped 401 without a key, 403 with another one)."""
    key = key_from_headers(request.headers)
    if key is None:
        raise AuthenticationError("no API key provided; send 'Authorization: Bearer <key>'")
    if not hmac.compare_digest(key.encode(), master_key.encode()):
        raise PermissionDeniedError("this route needs the master key or an admin key", code="admin_only")
    return AdminCaller(identity="master_key")
