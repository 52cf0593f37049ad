"""Usage envelopes across a rolling upgrade (pure): fields a newer writer adds are ignored, older
decodable versions are accepted, and a newer version is told apart from poison."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from hydite_common.events import (
    DECODABLE_SCHEMA_VERSIONS,
    USAGE_SCHEMA_VERSION,
    NewerSchemaVersion,
    PoisonMessage,
    decode_batch,
    decode_tally,
)

NEXT_VERSION = max(DECODABLE_SCHEMA_VERSIONS) + 1


def _event(**extra: Any) -> dict[str, Any]:
    return {
        "request_id": "req-1", "call_type": "chat_completion", "start_time_ms": 1.0, "end_time_ms": 2.0,
        "key_hash": "ab" * 32, "model": "m", "status": "success", "prompt_tokens": 1,
        "completion_tokens": 2, "total_tokens": 3, "cost": 0.5, **extra,
    }  # fmt: skip


def _envelope(version: int, **extra: Any) -> bytes:
    return orjson.dumps({"schema_version": version, "node_id": "n", "seq": 4, "events": [_event()], **extra})


def test_fields_a_newer_writer_adds_are_ignored() -> None:
    """An envelope and an event carrying fields this build does not know decode, known fields intact."""
    data = orjson.dumps(
        {
            "schema_version": USAGE_SCHEMA_VERSION, "node_id": "n", "seq": 4, "region": "eu",
            "events": [_event(carbon_grams=1.5, trace_id="t")],
        }
    )  # fmt: skip
    batch = decode_batch(data)
    assert (batch.node_id, batch.seq, batch.rejected) == ("n", 4, ())
    assert batch.events[0]["request_id"] == "req-1" and batch.events[0]["cost"] == 0.5


@pytest.mark.parametrize("version", sorted(DECODABLE_SCHEMA_VERSIONS))
def test_every_decodable_version_is_accepted(version: int) -> None:
    """Version 1 envelopes (older data planes) and the current version decode."""
    assert decode_batch(_envelope(version)).schema_version == version


def test_a_newer_version_is_not_poison() -> None:
    """A batch or tally of a version after this build's raises NewerSchemaVersion, which callers
    must not treat as PoisonMessage (it is not one)."""
    with pytest.raises(NewerSchemaVersion) as raised:
        decode_batch(_envelope(NEXT_VERSION))
    assert raised.value.version == NEXT_VERSION
    assert not isinstance(raised.value, PoisonMessage)
    tally = {
        "schema_version": NEXT_VERSION,
        "kind": "tally",
        "node_id": "n",
        "publisher_id": "n.1",
        "minutes": {},
    }
    with pytest.raises(NewerSchemaVersion):
        decode_tally(orjson.dumps(tally))


@pytest.mark.parametrize("version", [0, -1, "3", True, None])
def test_a_version_that_is_neither_known_nor_newer_is_poison(version: object) -> None:
    """Zero, negatives and non-integers can never be decoded by any build."""
    with pytest.raises(PoisonMessage):
        decode_batch(orjson.dumps({"schema_version": version, "node_id": "n", "seq": 1, "events": []}))
