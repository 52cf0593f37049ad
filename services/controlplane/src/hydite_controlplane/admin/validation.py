"""Request models for admin routes and the mapping of validation failures to 422."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from hydite_common.errors import UnprocessableEntityError
from hydite_common.http import read_json_object

_DURATION = re.compile(r"^(\d+)(s|m|h|d|w|mo)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "mo": 2592000}


def parse_duration(value: str) -> timedelta:
    """'30s', '5m', '1h', '7d', '2w', '1mo' (30 days) as a timedelta."""
    match = _DURATION.match(value.strip())
    if not match:
        raise ValueError("duration must look like 30s, 5m, 1h, 7d, 2w or 1mo")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


class AdminRequest(BaseModel):
    """Base of admin request bodies: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


RequestModel = TypeVar("RequestModel", bound=AdminRequest)


def validate(model: type[RequestModel], data: dict[str, Any]) -> RequestModel:
    """Build model from data, or raise a 422 naming the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise UnprocessableEntityError(f"{field}: {message}" if field else message, param=field) from None


async def read_request(request: web.Request, model: type[RequestModel]) -> RequestModel:
    """Parse and validate an admin request body."""
    return validate(model, await read_json_object(request))
