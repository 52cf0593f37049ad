"""Tally messages (a data plane's own count of the usage events it emitted): encode and decode
round-trip, and anything malformed is PoisonMessage."""

from __future__ import annotations

import orjson
import pytest

from hydite_common.events import PoisonMessage, UsageTally, decode_tally, encode_tally


def test_a_tally_round_trips() -> None:
    """encode_tally writes the documented body and decode_tally reads it back."""
    data = encode_tally("node-a", "node-a.0a1b2c3d", {1_700_000_040: 12, 1_700_000_100: 0})
    assert orjson.loads(data) == {
        "schema_version": 2,
        "kind": "tally",
        "node_id": "node-a",
        "publisher_id": "node-a.0a1b2c3d",
        "minutes": {"1700000040": 12, "1700000100": 0},
    }
    assert decode_tally(data) == UsageTally(
        "node-a", "node-a.0a1b2c3d", {1_700_000_040: 12, 1_700_000_100: 0}
    )


def test_a_second_inside_a_minute_is_floored_and_the_larger_count_kept() -> None:
    """Two keys of one minute become that minute, with the larger count."""
    assert decode_tally(encode_tally("n", "n.1", {1_700_000_041: 3, 1_700_000_099: 5})).minutes == {
        1_700_000_040: 5
    }


def body(**fields: object) -> bytes:
    """A well-formed tally body with some fields replaced."""
    tally: dict[str, object] = {
        "schema_version": 2, "kind": "tally", "node_id": "n", "publisher_id": "n.1", "minutes": {"60": 1},
    }  # fmt: skip
    tally.update(fields)
    return orjson.dumps(tally)


@pytest.mark.parametrize(
    "data",
    [
        b"{no",
        b"[]",
        body(schema_version=1),
        body(schema_version="2"),
        body(kind="batch"),
        body(node_id=""),
        body(publisher_id=7),
        body(minutes=[1]),
        body(minutes={"x": 1}),
        body(minutes={"-60": 1}),
        body(minutes={"60": -1}),
        body(minutes={"60": 1.5}),
        body(minutes={"60": True}),
        body(minutes={"60": 2**63}),
        body(minutes={"999999999999999": 1}),
    ],
)
def test_a_malformed_tally_is_poison(data: bytes) -> None:
    """Bad JSON, a wrong version or kind, missing ids, or minutes and counts that are no
    non-negative integers are refused."""
    with pytest.raises(PoisonMessage):
        decode_tally(data)
