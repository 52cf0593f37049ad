"""The bounds every admin request value must keep (admin/validation.py), checked without a stack."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hydite_common.errors import UnprocessableEntityError
from hydite_controlplane.admin.keys import GenerateKeyRequest, KeySettings, check_custom_key
from hydite_controlplane.admin.models import NewModelRequest
from hydite_controlplane.admin.validation import (
    MAX_COUNT,
    MAX_DURATION,
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    MIN_INT,
    OutOfBounds,
    bounded_timestamp,
    check_bounded,
    check_json_field,
    parse_duration,
    validate,
)


def _nested(depth: int) -> dict[str, Any]:
    """A JSON object with `depth` levels of objects ({"a": {"a": ... 1}})."""
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    result: dict[str, Any] = value
    return result


@pytest.mark.parametrize(
    "value",
    [
        {"n": MAX_COUNT, "m": MIN_INT, "f": 1e18, "g": -1.5, "tiny": 1e-300},
        {"s": "x" * 1000, "list": [1, "two", None, True, {"k": []}]},
        _nested(MAX_JSON_DEPTH - 1),
    ],
)
def test_values_every_consumer_holds_pass(value: dict[str, Any]) -> None:
    """64-bit integers, floats below 2**63, ordinary strings and nesting within the bound pass."""
    assert check_json_field(value) == value


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"n": 2**63}, "n"),
        ({"n": -(2**63) - 1}, "n"),
        ({"n": 2**64}, "n"),
        ({"f": 1e20}, "f"),  # JSONB keeps it as the integer 10**20, which orjson cannot write
        ({"f": 2.0**63}, "f"),
        ({"f": float("inf")}, "f"),
        ({"f": float("nan")}, "f"),
        ({"list": [1, [2, 1e300]]}, "list.1.1"),
        ({"s": "a\x00b"}, "s"),
        ({"k\x00": 1}, "k\x00"),
        ({"outer": {"s": "x" * (64 * 1024 + 1)}}, "outer.s"),
    ],
)
def test_values_some_consumer_cannot_hold_are_refused_with_their_path(value: Any, path: str) -> None:
    """Huge integers and integral floats, non-finite floats, NUL and long strings fail where they sit."""
    with pytest.raises(OutOfBounds) as raised:
        check_bounded(value)
    assert raised.value.path == path


def test_nesting_beyond_the_bound_is_refused_without_recursion() -> None:
    """A value nested 100,000 deep is refused by the iterative walk (no RecursionError)."""
    check_bounded(_nested(100_000))  # no depth bound: walks it all
    with pytest.raises(OutOfBounds, match="nest at most"):
        check_json_field(_nested(100_000))
    with pytest.raises(OutOfBounds, match="nest at most"):
        check_json_field(_nested(MAX_JSON_DEPTH + 1))


def test_json_fields_are_bounded_in_size() -> None:
    """A JSON field larger than MAX_JSON_BYTES serialised is refused even if each string is short."""
    check_json_field({"s": "x" * (MAX_JSON_BYTES - 100)})
    with pytest.raises(ValueError, match="bytes as JSON"):
        check_json_field({str(i): "x" * 1000 for i in range(70)})


def test_durations_are_bounded() -> None:
    """Durations up to about 100 years parse; longer ones, however many digits, are a ValueError."""
    assert parse_duration("36500d") == MAX_DURATION
    assert parse_duration("1mo") == timedelta(days=30)
    for bad in ("36501d", "1000000000d", "9" * 5000 + "s", "7x"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_timestamps_are_bounded_and_aware() -> None:
    """A naive timestamp is UTC; years outside [1970, 9000), and offsets past datetime's range, fail."""
    assert bounded_timestamp(datetime(2030, 1, 1)) == datetime(2030, 1, 1, tzinfo=UTC)
    too_late = datetime.fromisoformat("9999-12-31T23:59:59-23:59")
    too_early = datetime.fromisoformat("0001-01-01T00:00:00+23:59")
    for bad in (too_late, too_early, datetime(9000, 1, 1, tzinfo=UTC), datetime(1969, 12, 31, tzinfo=UTC)):
        with pytest.raises(ValueError):
            bounded_timestamp(bad)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"metadata": {"n": 2**64}}, "metadata"),
        ({"metadata": _nested(1000)}, "metadata"),
        ({"max_budget": "Infinity"}, "max_budget"),
        ({"max_budget": "NaN"}, "max_budget"),
        ({"max_budget": "1e300"}, "max_budget"),  # coerced from a string: caught on the validated value
        ({"key_alias": "a\x00b"}, "key_alias"),
        ({"tags": ["ok", "bad\x00"]}, "tags.1"),
        ({"model_tpm_limit": {"gpt\x00": 1}}, "model_tpm_limit.gpt\x00"),
        ({"expires": "9999-12-31T23:59:59-23:59"}, "expires"),
        ({"duration": "1000000000d"}, "duration"),
        ({"budget_duration": "1000000000d"}, "budget_duration"),
        ({"team_id": "t" * 257}, "team_id"),
    ],
)
def test_validate_refuses_unbounded_values_with_a_422_naming_the_field(
    body: dict[str, Any], param: str
) -> None:
    """validate() turns every bound a request value breaks into a 422 whose param is the field."""
    with pytest.raises(UnprocessableEntityError) as raised:
        validate(KeySettings, body)
    assert raised.value.status == 422
    assert raised.value.param == param


@pytest.mark.parametrize(
    ("litellm_params", "model_info", "param"),
    [
        ({"model": "mock/x", "max_retries": 2**40}, {}, "litellm_params.max_retries"),
        ({"model": "mock/x", "extra": 18446744073709551616}, {}, "litellm_params"),
        ({"model": "mock/x", "timeout": 1e300}, {}, "litellm_params.timeout"),
        ({"model": "mock/x", "weight": "Infinity"}, {}, "litellm_params.weight"),
        ({"model": "mock/x"}, {"n": 1e20}, "model_info"),
    ],
)
def test_model_params_and_info_are_bounded(
    litellm_params: dict[str, Any], model_info: dict[str, Any], param: str
) -> None:
    """max_retries, extra litellm_params and model_info keep the same bounds as metadata."""
    body = {"model_name": "m", "litellm_params": litellm_params, "model_info": model_info}
    with pytest.raises(UnprocessableEntityError) as raised:
        validate(NewModelRequest, body)
    assert raised.value.param == param


def test_custom_keys_need_the_strength_of_generated_ones() -> None:
    """A custom key is 'sk-' and 32 or more visible ASCII characters; shorter, spaced or NUL keys fail."""
    strong = "sk-" + "A1b2" * 8
    assert check_custom_key(strong) == strong
    assert validate(GenerateKeyRequest, {"key": strong}).key == strong
    for weak in (
        "sk-" + "a" * 31,
        "pk-" + "a" * 40,
        "sk-" + "a" * 20 + " " + "a" * 20,
        "sk-" + "a" * 40 + "\x00",
    ):
        with pytest.raises(ValueError):
            check_custom_key(weak)
