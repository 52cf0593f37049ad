"""Usage events (one per request) and the batch envelope they travel to JetStream in.

Schema version 1. A batch is ``{schema_version, node_id, seq, events[]}``; the
JetStream message id is ``node_id:seq`` so a retried publish is deduplicated,
and the per-node sequence lets a reader see a gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import orjson

USAGE_SCHEMA_VERSION = 1


class UsageEvent(TypedDict):
    """What one request cost and who made it; produced by the data plane."""

    request_id: str
    call_type: str
    start_time_ms: float
    end_time_ms: float
    key_hash: str
    key_alias: str
    user_id: str
    team_id: str
    organization_id: str
    customer_id: str
    tags: list[str]
    model: str
    model_group: str
    deployment_id: str
    provider: str
    upstream_model: str
    api_base: str
    stream: bool
    status: str  # "success" | "failure"
    http_status: int
    error_code: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    total_tokens: int
    cost: float
    usage_estimated: bool
    ttft_ms: float
    attempts: int
    response_id: NotRequired[str]
    """The id the answer carries (`chatcmpl-…`): not unique across providers, so never the key."""


_REQUIRED_TYPES: dict[str, type | tuple[type, ...]] = {
    "request_id": str,
    "call_type": str,
    "start_time_ms": (int, float),
    "end_time_ms": (int, float),
    "key_hash": str,
    "model": str,
    "status": str,
    "prompt_tokens": int,
    "completion_tokens": int,
    "total_tokens": int,
    "cost": (int, float),
}


class PoisonMessage(ValueError):
    """A message that can never be decoded into a usage batch."""


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    """One event of a batch that can never be billed, and why; its neighbours still are."""

    raw: Any
    reason: str


@dataclass(frozen=True, slots=True)
class UsageBatch:
    """Decoded envelope: which node sent it, its sequence number, the events, and the events
    that were unusable (set aside one by one, never the batch)."""

    schema_version: int
    node_id: str
    seq: int
    events: list[UsageEvent]
    rejected: tuple[RejectedEvent, ...] = ()

    @property
    def message_id(self) -> str:
        """The JetStream Nats-Msg-Id used for publish deduplication."""
        return batch_message_id(self.node_id, self.seq)


def batch_message_id(node_id: str, seq: int) -> str:
    """Nats-Msg-Id of a batch: node_id:seq."""
    return f"{node_id}:{seq}"


def encode_batch(node_id: str, seq: int, events: list[UsageEvent]) -> bytes:
    """Serialise a batch envelope."""
    return orjson.dumps(
        {"schema_version": USAGE_SCHEMA_VERSION, "node_id": node_id, "seq": seq, "events": events}
    )


def _check_event(raw: Any, index: int) -> UsageEvent:
    if not isinstance(raw, dict):
        raise PoisonMessage(f"event {index} is not an object")
    for name, expected in _REQUIRED_TYPES.items():
        value = raw.get(name)
        if not isinstance(value, expected) or isinstance(value, bool):
            raise PoisonMessage(f"event {index}: field {name!r} missing or of the wrong type")
    if not raw["request_id"]:
        raise PoisonMessage(f"event {index}: empty request_id")
    return raw  # type: ignore[return-value]


def decode_batch(data: bytes) -> UsageBatch:
    """Parse and validate a batch envelope; raises PoisonMessage for an unusable envelope, and
    lists an unusable event in `rejected` (the other events stay)."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise PoisonMessage("not JSON") from exc
    if not isinstance(raw, dict):
        raise PoisonMessage("envelope is not an object")
    version = raw.get("schema_version")
    if type(version) is not int or version != USAGE_SCHEMA_VERSION:
        raise PoisonMessage(f"unsupported schema_version {version!r}")
    node_id, seq, events = raw.get("node_id"), raw.get("seq"), raw.get("events")
    if not isinstance(node_id, str) or not node_id or type(seq) is not int or seq < 0:
        raise PoisonMessage("envelope lacks a node_id or a non-negative integer seq")
    if not isinstance(events, list):
        raise PoisonMessage("envelope lacks an events array")
    good: list[UsageEvent] = []
    rejected: list[RejectedEvent] = []
    for index, raw_event in enumerate(events):
        try:
            good.append(_check_event(raw_event, index))
        except PoisonMessage as exc:
            rejected.append(RejectedEvent(raw_event, str(exc)))
    return UsageBatch(version, node_id, seq, good, tuple(rejected))
