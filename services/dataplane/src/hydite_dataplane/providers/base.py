"""What a provider adapter is: pure translation between the internal shape and a wire format."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.request import NO_USAGE, InferenceRequest, TokenUsage
from hydite_dataplane.upstream.sse import event_batches
from hydite_dataplane.upstream.transport import UpstreamCall


@dataclass(frozen=True, slots=True)
class StreamEventInfo:
    """What the relay needs to know about one upstream SSE event."""

    usage: TokenUsage | None = None
    usage_only: bool = False  # a chunk that carries only usage (stripped unless asked for)
    done: bool = False  # the [DONE] sentinel
    response_id: str = ""  # the id of the answer, when this event was parsed and carries one
    usage_final: bool = True
    """False for usage that later events complete (Anthropic's message_start reports the input,
    its message_delta the output): the relay merges them and a client-gone drain goes on."""


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


def stream_event_batches(
    adapter: OperationAdapter, chunks: AsyncIterator[bytes]
) -> AsyncIterator[list[bytes]]:
    """A stream's events, as many as each read completed: SSE, unless the adapter's provider frames
    its streams otherwise (its `stream_batches`, e.g. AWS event-stream messages)."""
    own = getattr(adapter, "stream_batches", None)
    if own is None:
        return event_batches(chunks)
    batches: AsyncIterator[list[bytes]] = own(chunks)
    return batches


class MeteredByRequest(Protocol):
    """An operation billed partly by what its request asked for (characters to speak, images of a
    size and quality, rerank queries), which its answer alone does not tell."""

    def usage_of_call(self, request: InferenceRequest, body: Mapping[str, Any] | None) -> TokenUsage:
        """Usage of a finished call: from its answer (None: not JSON, or audio bytes) and its request."""
        ...


def billed_usage(
    adapter: OperationAdapter, request: InferenceRequest, body: Mapping[str, Any] | None
) -> TokenUsage:
    """What a complete answer is billed by: the adapter's `usage_of_call` when it has one, else the
    answer's usage (none for an answer that is not JSON)."""
    usage_of_call = getattr(adapter, "usage_of_call", None)
    if usage_of_call is not None:
        usage: TokenUsage = usage_of_call(request, body)
        return usage
    return adapter.usage_from_response(body) if body is not None else NO_USAGE
