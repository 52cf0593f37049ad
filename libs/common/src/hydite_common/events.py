"""Usage events (one per request) and the batch envelope they travel to JetStream in.

Schema version 2 (version 1 envelopes still decode); fields added since version 1 are optional
(`NotRequired`), so older events still decode, and fields a newer writer adds are ignored. An
envelope of a newer version raises NewerSchemaVersion: the reader leaves it in the stream for an
upgraded reader. A batch is ``{schema_version, node_id, seq, events[]}``,
and from version 2 may carry ``payloads[]`` (prompts and responses of keys that store them) instead; the
JetStream message id is ``node_id:seq`` so a retried publish is deduplicated,
and the per-node sequence lets a reader see a gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import orjson

USAGE_SCHEMA_VERSION = 2
DECODABLE_SCHEMA_VERSIONS = frozenset({1, 2})


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
    currency: NotRequired[str]
    """The currency of `cost` (ISO 4217; absent in older events: USD)."""
    cost_source: NotRequired[str]
    """Where the price came from: deployment, model_info, genai-prices, litellm or unknown (no
    price known: cost is 0, and the event says so rather than calling the request free)."""
    cache_write_tokens: NotRequired[int]
    audio_prompt_tokens: NotRequired[int]
    audio_completion_tokens: NotRequired[int]
    input_characters: NotRequired[int]
    """Characters turned into speech."""
    audio_seconds: NotRequired[float]
    """Seconds of audio transcribed or translated."""
    images: NotRequired[int]
    search_units: NotRequired[int]
    """Rerank search units."""
    unmetered: NotRequired[str]
    """A unit the request is billed by that nobody reported ("audio_seconds"): left at 0."""
    route: NotRequired[str]
    """The path the request came in on, as the route table names it (`/v1/chat/completions`)."""
    first_token_ms: NotRequired[float]
    """When the first byte of the answer came from the provider (epoch ms; 0: never)."""
    latency_ms: NotRequired[float]
    """From arrival to the end of the answer."""
    error_type: NotRequired[str]
    """The OpenAI error type of a failure (`rate_limit_error`, ...)."""
    retries: NotRequired[int]
    """Attempts made again on the same model group after a failure."""
    fallbacks: NotRequired[int]
    """Attempts made on another model group."""
    client_ip_hash: NotRequired[str]
    """A keyed hash of the client's address: lets requests of one client be grouped, never read back."""
    metadata: NotRequired[dict[str, Any]]
    """The request's `metadata` (bounded)."""
    usage_source: NotRequired[str]
    """"provider" (reported by it), "estimated" (counted by the gateway) or "none" (no call made)."""
    payload_stored: NotRequired[bool]
    """The prompt and response went out of band (the key or team stores them)."""
    customer_entity: NotRequired[str]
    """The end user as budgets count them: the registered customer's scoped name
    (`config_types.customer_name`) when the snapshot knows them, else absent (the bare customer_id)."""
    trace_id: NotRequired[str]
    """The W3C trace id (32 hex) of the request's trace, when it was traced or came with a
    traceparent: joins the event to the spans (spend logs do not keep it)."""


class UsagePayload(TypedDict):
    """The prompt and response of one request of a key or team that stores them: carried in their
    own batches, never inside the usage event. Each part is cut to a bound (`truncated`)."""

    request_id: str
    key_hash: str
    team_id: str
    created_ms: float
    messages: Any
    response: Any
    truncated: bool


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


class NewerSchemaVersion(ValueError):
    """A message of a schema version newer than this build knows: an upgraded reader will decode
    it, so it must wait in the stream rather than be dead-lettered."""

    def __init__(self, version: int) -> None:
        super().__init__(f"schema_version {version} is newer than {max(DECODABLE_SCHEMA_VERSIONS)}")
        self.version = version


def _checked_version(version: object, what: str) -> int:
    """The envelope's schema version if this build decodes it; NewerSchemaVersion for a later one
    (during a rolling upgrade the writers move first), PoisonMessage for anything else."""
    if type(version) is int and version > max(DECODABLE_SCHEMA_VERSIONS):
        raise NewerSchemaVersion(version)
    if type(version) is not int or version not in DECODABLE_SCHEMA_VERSIONS:
        raise PoisonMessage(f"unsupported {what}schema_version {version!r}")
    return version


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
    payloads: tuple[UsagePayload, ...] = ()

    @property
    def message_id(self) -> str:
        """The JetStream Nats-Msg-Id used for publish deduplication."""
        return batch_message_id(self.node_id, self.seq)


def batch_message_id(node_id: str, seq: int) -> str:
    """Nats-Msg-Id of a batch: node_id:seq."""
    return f"{node_id}:{seq}"


def encode_batch(
    node_id: str, seq: int, events: list[UsageEvent], payloads: list[UsagePayload] | None = None
) -> bytes:
    """Serialise a batch envelope (of events, or of payloads)."""
    envelope: dict[str, Any] = {
        "schema_version": USAGE_SCHEMA_VERSION, "node_id": node_id, "seq": seq, "events": events,
    }  # fmt: skip
    if payloads:
        envelope["payloads"] = payloads
    return orjson.dumps(envelope)


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
    """Parse and validate a batch envelope; raises PoisonMessage for an unusable envelope (and
    NewerSchemaVersion for one of a later version), and lists an unusable event in `rejected` (the
    other events stay). Fields this build does not know are ignored, in the envelope and in events."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise PoisonMessage("not JSON") from exc
    if not isinstance(raw, dict):
        raise PoisonMessage("envelope is not an object")
    version = _checked_version(raw.get("schema_version"), "")
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
    payloads = raw.get("payloads", [])
    if not isinstance(payloads, list):
        raise PoisonMessage("envelope's payloads is not an array")
    stored = tuple(p for p in payloads if isinstance(p, dict) and isinstance(p.get("request_id"), str))
    return UsageBatch(version, node_id, seq, good, tuple(rejected), stored)  # type: ignore[arg-type]


TALLY_KIND = "tally"
LATEST_EPOCH_SECOND = 253_402_300_799
"""The last second of the year 9999, the last minute a tally may name."""
LARGEST_COUNT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class UsageTally:
    """A data-plane process's own count of the usage events it emitted, per minute of their end
    time: absolute and cumulative, so the latest tally of a minute replaces the earlier ones."""

    node_id: str
    """The node's configured id."""
    publisher_id: str
    """The publishing process: `<node_id>.<incarnation>`, as its batches' node_id."""
    minutes: dict[int, int]
    """Epoch second of the minute's start -> events emitted in it so far."""


def encode_tally(node_id: str, publisher_id: str, minutes: dict[int, int]) -> bytes:
    """Serialise a tally message (published on `<prefix>.usage.tally`)."""
    return orjson.dumps(
        {
            "schema_version": USAGE_SCHEMA_VERSION,
            "kind": TALLY_KIND,
            "node_id": node_id,
            "publisher_id": publisher_id,
            "minutes": {str(minute): count for minute, count in minutes.items()},
        }
    )


def decode_tally(data: bytes) -> UsageTally:
    """Parse and validate a tally; raises PoisonMessage for anything but a well-formed one. A minute
    not on a minute boundary is floored to it (the larger count wins if two meet)."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise PoisonMessage("not JSON") from exc
    if not isinstance(raw, dict):
        raise PoisonMessage("tally is not an object")
    version = _checked_version(raw.get("schema_version"), "tally ")
    if version < 2:
        raise PoisonMessage(f"unsupported tally schema_version {version!r}")
    if raw.get("kind") != TALLY_KIND:
        raise PoisonMessage(f"not a tally: kind {raw.get('kind')!r}")
    node_id, publisher_id, minutes = raw.get("node_id"), raw.get("publisher_id"), raw.get("minutes")
    if not isinstance(node_id, str) or not node_id or not isinstance(publisher_id, str) or not publisher_id:
        raise PoisonMessage("tally lacks a node_id or a publisher_id")
    if not isinstance(minutes, dict):
        raise PoisonMessage("tally lacks a minutes object")
    counts: dict[int, int] = {}
    for key, count in minutes.items():
        if not key.isascii() or not key.isdigit() or int(key) > LATEST_EPOCH_SECOND:
            raise PoisonMessage(f"tally minute {key[:32]!r} is not an epoch second")
        if type(count) is not int or not 0 <= count <= LARGEST_COUNT:
            raise PoisonMessage(f"tally count of minute {key} is not a non-negative integer")
        minute = int(key) - int(key) % 60
        counts[minute] = max(count, counts.get(minute, 0))
    return UsageTally(node_id, publisher_id, counts)
