"""Anthropic Messages stream events -> OpenAI chat.completion.chunk events, and the usage each
Anthropic event carries. Pure translation, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from hydite_common import errors
from hydite_dataplane.providers.anthropic_response import (
    chat_usage,
    error_code,
    finish_reason,
    token_usage,
)
from hydite_dataplane.providers.base import PLAIN_EVENT, StreamEventInfo, response_id_of
from hydite_dataplane.request import TokenUsage
from hydite_dataplane.upstream.sse import data_event, data_of

USAGE_MARKER = b'"usage"'
DONE = b"data: [DONE]\n\n"
_CACHE_COUNTS = ("cache_read_input_tokens", "cache_creation_input_tokens")

_ERROR_CLASSES: dict[str, type[errors.HyditeError]] = {
    "invalid_request_error": errors.InvalidRequestError,
    "authentication_error": errors.AuthenticationError,
    "permission_error": errors.PermissionDeniedError,
    "not_found_error": errors.NotFoundError,
    "request_too_large": errors.PayloadTooLargeError,
    "rate_limit_error": errors.RateLimitError,
    "overloaded_error": errors.UpstreamError,
    "api_error": errors.UpstreamError,
}
"""Anthropic error type -> the gateway error a stream error event is shown as."""


def _parsed(event: bytes) -> dict[str, Any] | None:
    try:
        payload = orjson.loads(data_of(event))
    except orjson.JSONDecodeError:
        return None
    return payload if isinstance(payload, dict) else None


def _delta_usage(usage: dict[str, Any]) -> TokenUsage:
    """Usage of a message_delta: its output count, and the input counts when it reports them all
    (an input count without the cache counts would undercount message_start's)."""
    counts = token_usage(usage)
    if "input_tokens" in usage and all(name in usage for name in _CACHE_COUNTS):
        return counts
    return TokenUsage(
        completion_tokens=counts.completion_tokens,
        reasoning_tokens=counts.reasoning_tokens,
        cached_tokens=counts.cached_tokens,
        cache_write_tokens=counts.cache_write_tokens,
    )


def inspect_anthropic_event(event: bytes) -> StreamEventInfo:
    """message_start reports the input (final usage comes later), message_delta the output."""
    if USAGE_MARKER not in event:
        return PLAIN_EVENT
    payload = _parsed(event)
    if payload is None:
        return PLAIN_EVENT
    if payload.get("type") == "message_start" and isinstance(payload.get("message"), dict):
        message = payload["message"]
        if not isinstance(message.get("usage"), dict):
            return PLAIN_EVENT
        return StreamEventInfo(
            usage=token_usage(message["usage"]), response_id=response_id_of(message), usage_final=False
        )
    if payload.get("type") == "message_delta" and isinstance(payload.get("usage"), dict):
        return StreamEventInfo(usage=_delta_usage(payload["usage"]))
    return PLAIN_EVENT


def stream_error_body(error: Any) -> dict[str, Any]:
    """An Anthropic stream error object as the OpenAI error body a chat client reads."""
    fields = error if isinstance(error, dict) else {}
    kind = str(fields.get("type") or "api_error")
    message = str(fields.get("message") or "the provider's stream failed")
    error_class = _ERROR_CLASSES.get(kind, errors.UpstreamError)
    return error_class(f"provider error: {message}", code=error_code(kind, message)).to_body()


@dataclass(slots=True)
class _Block:
    """What one Anthropic content block becomes in the chat stream."""

    kind: str  # text, thinking, tool, answer (the JSON answer tool), or ignored
    tool_index: int = -1
    thinking: str = ""


class AnthropicChatStream:
    """A StreamTranslator from Anthropic's Messages events to chat.completion.chunk events (one
    request: one id, one model, the chunk with usage only when the client asked for it)."""

    def __init__(self, *, answer_tool: str | None, include_usage: bool, created: int) -> None:
        self._answer_tool = answer_tool
        self._include_usage = include_usage
        self._created = created
        self._id = ""
        self._model = ""
        self._usage: dict[str, Any] = {}
        self._blocks: dict[int, _Block] = {}
        self._tool_calls = 0
        self._head = self._chunk_head()

    def _chunk_head(self) -> bytes:
        # Every chunk starts alike: encoded once per message, each delta is then one small dumps.
        envelope = orjson.dumps(self._envelope([]))
        return b"data: " + envelope[: -len(b"[]}")] + b'[{"index":0,"delta":'

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        ending = (
            b'"finish_reason":null}]}\n\n'
            if finish is None
            else orjson.dumps({"finish_reason": finish})[1:] + b"]}\n\n"
        )
        return self._head + orjson.dumps(delta) + b',"logprobs":null,' + ending

    def _envelope(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }

    def translate(self, event: bytes) -> list[bytes]:
        """The chat events for one Anthropic event (none for pings and unknown events)."""
        payload = _parsed(event)
        if payload is None:
            return []
        kind = payload.get("type")
        if kind == "message_start":
            return self._start(payload.get("message"))
        if kind == "content_block_start":
            return self._open(payload)
        if kind == "content_block_delta":
            return self._delta(payload)
        if kind == "message_delta":
            return self._message_delta(payload)
        if kind == "message_stop":
            return self._stop()
        if kind == "error":
            return [data_event(orjson.dumps(stream_error_body(payload.get("error"))))]
        return []

    def _start(self, message: Any) -> list[bytes]:
        if not isinstance(message, dict):
            return []
        self._id = str(message.get("id", ""))
        self._model = str(message.get("model", ""))
        self._head = self._chunk_head()
        if isinstance(message.get("usage"), dict):
            self._usage.update(message["usage"])
        return [self._chunk({"role": "assistant", "content": ""})]

    def _open(self, payload: dict[str, Any]) -> list[bytes]:
        block = payload.get("content_block")
        index = payload.get("index")
        if not isinstance(block, dict) or not isinstance(index, int):
            return []
        kind = block.get("type")
        if kind == "text":
            self._blocks[index] = _Block("text")
            return [self._chunk({"content": block["text"]})] if block.get("text") else []
        if kind == "thinking":
            self._blocks[index] = _Block("thinking", thinking=str(block.get("thinking") or ""))
            text = self._blocks[index].thinking
            return [self._chunk({"reasoning_content": text})] if text else []
        if kind == "redacted_thinking":
            self._blocks[index] = _Block("ignored")
            return [
                self._chunk(
                    {"thinking_blocks": [{"type": "redacted_thinking", "data": block.get("data", "")}]}
                )
            ]
        if kind == "tool_use" and self._answer_tool is not None and block.get("name") == self._answer_tool:
            self._blocks[index] = _Block("answer")
            return []
        if kind == "tool_use":
            self._blocks[index] = _Block("tool", tool_index=self._tool_calls)
            self._tool_calls += 1
            call = {
                "index": self._blocks[index].tool_index,
                "id": str(block.get("id", "")),
                "type": "function",
                "function": {"name": str(block.get("name", "")), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        self._blocks[index] = _Block("ignored")  # server tools and their results have no chat form
        return []

    def _delta(self, payload: dict[str, Any]) -> list[bytes]:
        block = self._blocks.get(payload.get("index", -1))
        delta = payload.get("delta")
        if block is None or not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta" and block.kind == "text":
            return [self._chunk({"content": str(delta.get("text", ""))})]
        if kind == "thinking_delta" and block.kind == "thinking":
            text = str(delta.get("thinking", ""))
            block.thinking += text
            return [self._chunk({"reasoning_content": text})]
        if kind == "signature_delta" and block.kind == "thinking":
            signed = {
                "type": "thinking",
                "thinking": block.thinking,
                "signature": str(delta.get("signature", "")),
            }
            return [self._chunk({"thinking_blocks": [signed]})]
        if kind == "input_json_delta" and delta.get("partial_json"):
            partial = str(delta["partial_json"])
            if block.kind == "answer":
                return [self._chunk({"content": partial})]
            if block.kind == "tool":
                return [
                    self._chunk(
                        {"tool_calls": [{"index": block.tool_index, "function": {"arguments": partial}}]}
                    )
                ]
        return []

    def _message_delta(self, payload: dict[str, Any]) -> list[bytes]:
        if isinstance(payload.get("usage"), dict):
            self._usage.update(payload["usage"])
        delta = payload.get("delta")
        stop_reason = delta.get("stop_reason") if isinstance(delta, dict) else None
        if stop_reason is None:
            return []
        return [self._chunk({}, finish_reason(stop_reason, self._tool_calls))]

    def _stop(self) -> list[bytes]:
        events = []
        if self._include_usage:
            events.append(data_event(orjson.dumps({**self._envelope([]), "usage": chat_usage(self._usage)})))
        events.append(DONE)
        return events
