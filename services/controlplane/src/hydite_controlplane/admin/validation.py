"""Request models for admin routes and the mapping of validation failures to 422."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from hydite_common.errors import InvalidRequestError, UnprocessableEntityError
from hydite_common.http import read_json_object

_DURATION = re.compile(r"^(\d+)(s|m|h|d|w|mo)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "mo": 2592000}


def parse_duration(value: str) -> timedelta:
    """'30s', '5m', '1h', '7d', '2w', '1mo' (30 days) as a timedelta."""
    match = _DURATION.match(value.strip())
    if not match:
        raise ValueError("duration must look like 30s, 5m, 1h, 7d, 2w or 1mo")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def _valid_duration(value: str) -> str:
    parse_duration(value)
    return value


Duration = Annotated[str, AfterValidator(_valid_duration)]
"""A duration field: 30s, 5m, 1h, 7d, 2w or 1mo."""


class AdminRequest(BaseModel):
    """Base of admin request bodies: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


MAX_COUNT = 2**63 - 1
"""The largest limit a BIGINT column (and the snapshot's uint64) holds."""

RequestModel = TypeVar("RequestModel", bound=AdminRequest)


class LimitFields(AdminRequest):
    """Budget and rate limits any entity may carry."""

    max_budget: float | None = Field(default=None, ge=0)
    soft_budget: float | None = Field(default=None, ge=0)
    budget_duration: Duration | None = None
    rpm_limit: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    tpm_limit: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    max_parallel_requests: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    model_rpm_limit: dict[str, int] | None = None
    model_tpm_limit: dict[str, int] | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("model_rpm_limit", "model_tpm_limit")
    @classmethod
    def _non_negative(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        if value is not None and any(not 0 <= v <= MAX_COUNT for v in value.values()):
            raise ValueError(f"per-model limits must be between 0 and {MAX_COUNT}")
        return value


def validate(model: type[RequestModel], data: dict[str, Any]) -> RequestModel:
    """Build model from data, or raise a 422 naming the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        # Unions put the member type's name in the path (member.TeamMember.role); users know fields only.
        parts = [str(p) for p in first["loc"] if not (isinstance(p, str) and (p[:1].isupper() or "[" in p))]
        field = ".".join(parts) or None
        message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise UnprocessableEntityError(f"{field}: {message}" if field else message, param=field) from None


async def read_request(request: web.Request, model: type[RequestModel]) -> RequestModel:
    """Parse and validate an admin request body."""
    return validate(model, await read_json_object(request))


def query_int(request: web.Request, name: str, default: int, *, minimum: int, maximum: int) -> int:
    """An integer query parameter within bounds, or a 400 naming it."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequestError(f"{name} must be an integer", param=name) from None
    if not minimum <= value <= maximum:
        raise InvalidRequestError(f"{name} must be between {minimum} and {maximum}", param=name)
    return value


def page_of(request: web.Request, *, size_param: str = "size", default_size: int = 10) -> tuple[int, int]:
    """(page, page size) from ?page=&size=, 1-based, size at most 1000."""
    return (
        query_int(request, "page", 1, minimum=1, maximum=1_000_000),
        query_int(request, size_param, default_size, minimum=1, maximum=1000),
    )


def paged(items: list[Any], total: int, page: int, size: int, items_name: str) -> dict[str, Any]:
    """A page in LiteLLM's list shape."""
    return {
        items_name: items,
        "total_count": total,
        "current_page": page,
        "total_pages": max(1, -(-total // size)),
    }
