"""Request models for admin routes, the bounds every value they carry must keep, and the mapping
of validation failures to 422.

The bounds are what every consumer of a stored value can hold: Postgres (text and JSONB refuse
NUL; JSONB keeps numbers as numerics, so an integral float such as 1e20 comes back as the integer
100000000000000000000), orjson (integers within 64 bits), protobuf (int64) and Python's datetime
(years 1 to 9999). A value outside them is refused here, at the edge, with a 422 naming the
field; inside, nothing has to cope with it.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import orjson
from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from hydite_common.errors import InvalidRequestError, UnprocessableEntityError
from hydite_common.http import read_json_object

MAX_COUNT = 2**63 - 1
"""The largest limit a BIGINT column (and the snapshot's uint64) holds."""
MIN_INT = -(2**63)
"""The smallest integer anything may carry (signed 64 bits)."""
MAX_FLOAT = 2.0**63
"""Floats must stay below this in magnitude: JSONB turns an integral float into an integer, and
every float this large is integral."""
MAX_JSON_DEPTH = 32
"""How deeply a JSON field (metadata, model_info, extra litellm_params) may nest."""
MAX_JSON_BYTES = 64 * 1024
"""The largest a JSON field may be, serialised."""
MAX_STRING = 64 * 1024
"""The longest any string in a request may be (characters)."""
MAX_NAME = 256
"""The longest an id, alias or name may be (they are indexed, and btree rows are small)."""
MAX_DURATION = timedelta(days=36_500)
"""The longest duration (about 100 years)."""
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
"""Timestamps (expiries, date filters) must lie in [EARLIEST, LATEST)."""

_DURATION = re.compile(r"^(\d+)(s|m|h|d|w|mo)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "mo": 2592000}


def parse_duration(value: str) -> timedelta:
    """'30s', '5m', '1h', '7d', '2w', '1mo' (30 days) as a timedelta, at most MAX_DURATION."""
    match = _DURATION.match(value.strip())
    if not match:
        raise ValueError("duration must look like 30s, 5m, 1h, 7d, 2w or 1mo")
    digits, unit = match.groups()
    # Bound the digits before int(): a long enough digit string is slow to convert, or refused.
    seconds = int(digits) * _UNIT_SECONDS[unit] if len(digits) <= 12 else math.inf
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"duration may be at most {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)


def _valid_duration(value: str) -> str:
    parse_duration(value)
    return value


Duration = Annotated[str, AfterValidator(_valid_duration)]
"""A duration field: 30s, 5m, 1h, 7d, 2w or 1mo, at most MAX_DURATION."""


def bounded_timestamp(value: datetime) -> datetime:
    """value as an aware datetime (naive means UTC) within [EARLIEST, LATEST), else ValueError."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    try:
        in_range = EARLIEST <= aware < LATEST
    except OverflowError:  # an offset that moves year 1 or 9999 out of datetime's range
        in_range = False
    if not in_range:
        raise ValueError(f"must lie between {EARLIEST.year} and {LATEST.year} (UTC)")
    return aware


Timestamp = Annotated[datetime, AfterValidator(bounded_timestamp)]
"""A timestamp field (ISO 8601), timezone-aware and within [EARLIEST, LATEST)."""

Name = Annotated[str, Field(max_length=MAX_NAME)]
"""An id, alias or name: at most MAX_NAME characters."""


class OutOfBounds(ValueError):
    """A value no consumer of the config can hold; `path` is where it sits (dotted, "" for the root)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason


def check_bounded(value: Any, path: str = "", *, max_depth: int | None = None) -> None:
    """Refuse (OutOfBounds) what JSON, protobuf and Postgres cannot all hold, anywhere in value:
    NUL in a string or key, strings over MAX_STRING, integers beyond signed 64 bits, floats that
    are not finite or not below MAX_FLOAT in magnitude, and (with max_depth) deeper nesting.

    Iterative, so a deeply nested value cannot exhaust the stack.
    """
    pending: list[tuple[Any, str, int]] = [(value, path, 0)]
    while pending:
        item, where, depth = pending.pop()
        if isinstance(item, str):
            _check_string(item, where)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not MIN_INT <= item <= MAX_COUNT:
                raise OutOfBounds(where, "integers must fit in signed 64 bits")
        elif isinstance(item, float):
            if not math.isfinite(item) or abs(item) >= MAX_FLOAT:
                raise OutOfBounds(where, f"numbers must be finite and below {MAX_FLOAT:.3g} in magnitude")
        elif isinstance(item, dict | list | tuple):
            if max_depth is not None and depth >= max_depth:
                raise OutOfBounds(where, f"may nest at most {max_depth} levels deep")
            entries = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in entries:
                child_path = f"{where}.{key}" if where else str(key)
                if isinstance(key, str):
                    _check_string(key, child_path)
                pending.append((child, child_path, depth + 1))


def _check_string(value: str, where: str) -> None:
    if "\x00" in value:
        raise OutOfBounds(where, "strings may not contain NUL (\\u0000)")
    if len(value) > MAX_STRING:
        raise OutOfBounds(where, f"strings may be at most {MAX_STRING} characters")


def check_json_field(value: dict[str, Any]) -> dict[str, Any]:
    """A JSON field's value within the bounds, nested at most MAX_JSON_DEPTH levels and at most
    MAX_JSON_BYTES serialised; else ValueError."""
    check_bounded(value, max_depth=MAX_JSON_DEPTH)
    if len(orjson.dumps(value)) > MAX_JSON_BYTES:
        raise ValueError(f"may be at most {MAX_JSON_BYTES} bytes as JSON")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(check_json_field)]
"""A free-form JSON object field (metadata, model_info): every value within the bounds."""

ModelName = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
"""A model name a request may ask for."""

ModelAliases = Annotated[dict[ModelName, ModelName], AfterValidator(check_json_field)]
"""LiteLLM's `aliases`: a requested model name -> the model that serves it."""


class AdminRequest(BaseModel):
    """Base of admin request bodies: unknown fields are an error, floats must be finite."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


RequestModel = TypeVar("RequestModel", bound=AdminRequest)


MAX_BUDGET_WINDOWS = 10
"""How many further budget periods one entity may carry."""


class BudgetWindowField(AdminRequest):
    """One further budget period of an entity, as admin bodies give it."""

    max_budget: float = Field(ge=0)
    soft_budget: float | None = Field(default=None, ge=0)
    budget_duration: Duration


def check_budget_windows(
    windows: list[BudgetWindowField] | None, budget_duration: str | None = None
) -> list[BudgetWindowField] | None:
    """The windows, unless there are more than MAX_BUDGET_WINDOWS or two share a duration (also
    with the entity's own budget_duration); else ValueError."""
    if windows is None:
        return None
    if len(windows) > MAX_BUDGET_WINDOWS:
        raise ValueError(f"at most {MAX_BUDGET_WINDOWS} budget windows")
    durations = [window.budget_duration for window in windows]
    if budget_duration:
        durations.append(budget_duration)
    if len(set(durations)) != len(durations):
        raise ValueError("two budgets may not share a budget_duration")
    return windows


def check_stored_windows(row: Any) -> None:
    """A 422 when a row's stored budget_windows share a duration with its budget_duration (an
    update may set one and the other was stored before)."""
    durations = [str(window["budget_duration"]) for window in getattr(row, "budget_windows", None) or []]
    own = getattr(row, "budget_duration", None)
    if own:
        durations.append(own)
    if len(set(durations)) != len(durations):
        raise UnprocessableEntityError(
            "budget_windows: two budgets may not share a budget_duration", param="budget_windows"
        )


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
    metadata: JsonObject | None = None
    budget_windows: list[BudgetWindowField] | None = None
    """Further budgets over their own periods (e.g. $10 a day besides $200 a month)."""

    @model_validator(mode="after")
    def _distinct_windows(self) -> LimitFields:
        check_budget_windows(self.budget_windows, self.budget_duration)
        return self

    @field_validator("model_rpm_limit", "model_tpm_limit")
    @classmethod
    def _non_negative(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        if value is not None and any(not 0 <= v <= MAX_COUNT for v in value.values()):
            raise ValueError(f"per-model limits must be between 0 and {MAX_COUNT}")
        return value


def validate(model: type[RequestModel], data: dict[str, Any]) -> RequestModel:
    """Build model from data, or raise a 422 naming the first bad field; every value it holds
    (strings and numbers of every field, coerced ones included) must be within the bounds."""
    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        # Unions put the member type's name in the path (member.TeamMember.role); users know fields only.
        parts = [str(p) for p in first["loc"] if not (isinstance(p, str) and (p[:1].isupper() or "[" in p))]
        field = ".".join(parts) or None
        message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise UnprocessableEntityError(f"{field}: {message}" if field else message, param=field) from None
    try:
        check_bounded(result.model_dump())
    except OutOfBounds as exc:
        raise UnprocessableEntityError(str(exc), param=exc.path or None) from None
    return result


def check_query(request: web.Request) -> None:
    """A 400 naming the query parameter whose name or value holds NUL, a character that is not
    valid UTF-8, or more than MAX_STRING characters (no admin route can look such a value up)."""
    for name, value in request.query.items():
        for text in (name, value):
            try:
                _check_string(text, name)
                text.encode()
            except (OutOfBounds, UnicodeEncodeError):
                raise InvalidRequestError(
                    f"query parameter {name.encode(errors='replace').decode()!r} must be UTF-8 text "
                    f"without NUL, at most {MAX_STRING} characters",
                    param=name.encode(errors="replace").decode(),
                ) from None


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
