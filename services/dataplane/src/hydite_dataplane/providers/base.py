"""What a provider adapter is: pure translation between the internal shape and a wire format."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.request import InferenceRequest, TokenUsage
from hydite_dataplane.upstream.transport import UpstreamCall


@dataclass(frozen=True, slots=True)
class StreamEventInfo:
    """What the relay needs to know about one upstream SSE event."""

    usage: TokenUsage | None = None
    usage_only: bool = False  # a chunk that carries only usage (stripped unless asked for)
    done: bool = False  # the [DONE] sentinel
    response_id: str = ""  # the id of the answer, when this event was parsed and carries one


MAX_RESPONSE_ID_CHARS = 256


def response_id_of(body: Mapping[str, Any]) -> str:
    """The id an answer carries (`chatcmpl-…`, `resp_…`), cut to what a spend row keeps."""
    value = body.get("id")
    return value[:MAX_RESPONSE_ID_CHARS] if isinstance(value, str) else ""


PLAIN_EVENT = StreamEventInfo()
"""An event without usage (shared: the relay sees many per stream)."""
DONE_EVENT = StreamEventInfo(done=True)


class StreamTranslator(Protocol):
    """Rewrites one response stream into another wire format, event by event (stateful, per request)."""

    def translate(self, event: bytes) -> list[bytes]:
        """The events to send for one upstream event (possibly none, possibly several)."""
        ...


class OperationAdapter(Protocol):
    """Translation for one operation (chat, embeddings, ...) of one wire format. No I/O."""

    supported_params: frozenset[str]
    stream_usage_marker: bytes
    """Bytes every stream event that carries usage contains: a read without them is relayed
    without looking at its events one by one."""

    def build_call(self, request: InferenceRequest, target: DeploymentTarget) -> UpstreamCall:
        """The upstream request for an inference request."""
        ...

    def usage_from_response(self, body: Mapping[str, Any]) -> TokenUsage:
        """Token usage of a complete (non-stream) upstream response."""
        ...

    def inspect_stream_event(self, event: bytes) -> StreamEventInfo:
        """Usage and kind of one complete SSE event (bytes up to and including the blank line)."""
        ...

    def translate_response(self, request: InferenceRequest, body: dict[str, Any]) -> dict[str, Any] | None:
        """The client's response for a complete upstream response; None relays the upstream bytes."""
        ...

    def stream_translator(self, request: InferenceRequest) -> StreamTranslator | None:
        """A translator for this request's stream; None relays upstream events as they are."""
        ...
