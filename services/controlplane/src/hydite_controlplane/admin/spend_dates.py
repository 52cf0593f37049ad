"""Dates and times in the query strings of the spend routes: LiteLLM's `YYYY-MM-DD` (or an ISO 8601
time), refused with a 400 naming the parameter."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hydite_common.errors import InvalidRequestError
from hydite_controlplane.admin.validation import EARLIEST, LATEST, bounded_timestamp


def _bad(name: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"{name} must be a date such as 2026-01-31 (or an ISO 8601 time), between {EARLIEST.year} and "
        f"{LATEST.year}",
        param=name,
    )


def parse_time(name: str, value: str) -> datetime:
    """A UTC time from a date (its midnight) or an ISO 8601 time (naive means UTC)."""
    try:
        return bounded_timestamp(datetime.fromisoformat(value.strip()))
    except ValueError:
        raise _bad(name) from None


def parse_day(name: str, value: str) -> date:
    """The UTC day of a date or ISO 8601 time."""
    return parse_time(name, value).astimezone(UTC).date()


def is_plain_date(value: str) -> bool:
    """Whether the value names a day rather than a time."""
    return len(value.strip()) == len("2026-01-31")


def end_of(name: str, value: str) -> datetime:
    """The exclusive end of an inclusive `end_date`: the next midnight after a plain date, just after
    a time."""
    parsed = parse_time(name, value)
    return parsed + (timedelta(days=1) if is_plain_date(value) else timedelta(microseconds=1))
