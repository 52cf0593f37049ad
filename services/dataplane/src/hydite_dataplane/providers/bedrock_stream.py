"""Bedrock ConverseStream: the AWS event-stream binary framing (application/vnd.amazon.eventstream)
decoded into one event per message, and those events translated into OpenAI chat.completion.chunk
events (pure, stateful per request).

Each decoded message is handed on as a text event, `event: <:event-type>` and `data: <payload>`,
so the relay's redaction and the translator read it as they read SSE; an exception message becomes
`event: error` with `{"__type": <:exception-type>, "message": ...}`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from hydite_common.errors import HyditeError, UpstreamError
from hydite_dataplane.providers.bedrock_response import finish_reason, openai_usage, token_usage
from hydite_dataplane.request import TokenUsage
from hydite_dataplane.upstream.errors import error_from_upstream
from hydite_dataplane.upstream.sse import data_event, data_of

Json = dict[str, Any]

DONE = b"data: [DONE]\n\n"
EXCEPTION_STATUS = {
    "throttlingException": 429,
    "validationException": 400,
    "serviceUnavailableException": 503,
}
"""The HTTP status Bedrock gives each exception a stream may carry (any other: 502)."""


def message_event(headers: Mapping[str, Any], payload: bytes) -> bytes:
    """One decoded event-stream message as a text event."""
    kind = headers.get(":message-type")
    if kind in ("exception", "error"):
        name = headers.get(":exception-type") or headers.get(":error-code") or "internalServerException"
        try:
            parsed: Any = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError:
            parsed = {"message": payload.decode(errors="replace")}
        message = parsed.get("message") or parsed.get("Message") if isinstance(parsed, dict) else None
        text = message if isinstance(message, str) else str(headers.get(":error-message") or "")
        return b"event: error\ndata: " + orjson.dumps({"__type": str(name), "message": text}) + b"\n\n"
    name = headers.get(":event-type")
    body = payload.strip() or b"{}"
    return b"event: " + str(name).encode() + b"\ndata: " + body.replace(b"\n", b" ") + b"\n\n"


async def event_stream_batches(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    """The messages each piece of the body completed, as text events; a frame that fails its
    checksum or framing is a broken stream (a gateway error), never relayed."""
    from botocore.eventstream import EventStreamBuffer, ParserError  # loaded by the first Bedrock stream

    buffer = EventStreamBuffer()
    async for piece in chunks:
        buffer.add_data(piece)
        try:
            batch = [message_event(m.headers, m.payload) for m in buffer]
        except ParserError as exc:
            raise UpstreamError(f"the provider's event stream is malformed: {type(exc).__name__}") from None
        if batch:
            yield batch


def event_name(event: bytes) -> bytes:
    """The `event:` name of a text event."""
    first = event.split(b"\n", 1)[0]
    return first[6:].strip() if first.startswith(b"event:") else b""


def stream_error(payload: Mapping[str, Any]) -> HyditeError:
    """The gateway error for an exception a stream carried (already redacted)."""
    name = str(payload.get("__type") or "")
    status = EXCEPTION_STATUS.get(name, 502)
    header = name[:1].upper() + name[1:]
    body = orjson.dumps({"message": payload.get("message") or ""})
    return error_from_upstream(status, body, {"x-amzn-errortype": header}, "bedrock", credentials=())


class BedrockChatStream:
    """A StreamTranslator from ConverseStream events to chat completion chunks: text and reasoning
    deltas, tool calls (a start with id and name, then argument pieces), the finish reason at
    messageStop, then the usage chunk (when asked) and [DONE] at metadata."""

    def __init__(self, *, model: str, created: int, completion_id: str, wants_usage: bool) -> None:
        self._model = model
        self._created = created
        self._id = completion_id
        self._wants_usage = wants_usage
        self._tool_index: dict[int, int] = {}  # content block index -> tool call index
        self._finish: str | None = None
        self._ended = False

    def translate(self, event: bytes) -> list[bytes]:
        """The chunks for one ConverseStream event; nothing once the stream has ended."""
        if self._ended:
            return []
        name = event_name(event)
        try:
            payload: Any = orjson.loads(data_of(event))
        except orjson.JSONDecodeError:
            return []
        if not isinstance(payload, dict):
            return []
        if name == b"error":
            self._ended = True
            return [data_event(orjson.dumps(stream_error(payload).to_body()))]
        if name == b"messageStart":
            return [self._chunk({"role": "assistant", "content": ""})]
        if name == b"contentBlockStart":
            return self._block_start(payload)
        if name == b"contentBlockDelta":
            return self._delta(payload)
        if name == b"messageStop":
            self._finish = finish_reason(payload.get("stopReason"))
            return [self._chunk({}, self._finish)]
        if name == b"metadata":
            self._ended = True
            events = []
            if self._wants_usage:
                events.append(self._usage_chunk(token_usage(payload.get("usage"))))
            return [*events, DONE]
        return []

    def _block_start(self, payload: Mapping[str, Any]) -> list[bytes]:
        start = payload.get("start")
        tool = start.get("toolUse") if isinstance(start, dict) else None
        if not isinstance(tool, dict):
            return []
        block = payload.get("contentBlockIndex")
        index = len(self._tool_index)
        self._tool_index[block if isinstance(block, int) else -1 - index] = index
        call = {
            "index": index,
            "id": str(tool.get("toolUseId") or f"call_{index}"),
            "type": "function",
            "function": {"name": str(tool.get("name") or ""), "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _delta(self, payload: Mapping[str, Any]) -> list[bytes]:
        delta = payload.get("delta")
        if not isinstance(delta, dict):
            return []
        if isinstance(delta.get("text"), str):
            return [self._chunk({"content": delta["text"]})] if delta["text"] else []
        tool = delta.get("toolUse")
        if isinstance(tool, dict) and isinstance(tool.get("input"), str):
            block = payload.get("contentBlockIndex")
            index = self._tool_index.get(block) if isinstance(block, int) else None
            if index is None:
                return []
            return [self._chunk({"tool_calls": [{"index": index, "function": {"arguments": tool["input"]}}]})]
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict) and isinstance(reasoning.get("text"), str) and reasoning["text"]:
            return [self._chunk({"reasoning_content": reasoning["text"]})]
        return []

    def _chunk(self, delta: Json, finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return data_event(orjson.dumps(self._envelope([choice])))

    def _usage_chunk(self, usage: TokenUsage) -> bytes:
        return data_event(orjson.dumps({**self._envelope([]), "usage": openai_usage(usage)}))

    def _envelope(self, choices: list[Json]) -> Json:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
