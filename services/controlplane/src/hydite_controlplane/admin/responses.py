"""JSON responses of the admin routes: orjson, and the standard library's encoder for what orjson
cannot write, so one stored value never turns a read into a 500.

New values are bounded at the edge (validation.py), but a row written before those bounds, or by
hand, can hold an integer past 64 bits (JSONB also turns an integral float such as 1e20 into one).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import orjson
from aiohttp import web

from hydite_common.http import JSON_HEADERS


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response of payload; integers orjson refuses are written exactly by json.dumps."""
    try:
        body = orjson.dumps(payload)
    except TypeError:
        body = json.dumps(payload, default=_plain, allow_nan=False).encode()
    return web.Response(body=body, status=status, headers={**JSON_HEADERS, **(headers or {})})


def _plain(value: Any) -> Any:
    """What orjson writes natively but json.dumps does not."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
