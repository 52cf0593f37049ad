"""OpenAI chat completion chunks -> Anthropic's stream events (`event: <type>` then `data:`), and an
OpenAI error event as Anthropic's `event: error`. Pure, stateful per request."""

from __future__ import annotations

from typing import Any

import orjson

from hydite_dataplane.providers.messages_response import (
    anthropic_usage,
    matched_stop,
    message_id,
    reasoning_text,
    stop_reason,
)
from hydite_dataplane.providers.via_chat import ChatChunkEvents


def sse_event(kind: str, payload: dict[str, Any]) -> bytes:
    """One Anthropic stream event: its name line, then its data."""
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


OPENAI_TO_ANTHROPIC_ERROR = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "not_found_error": "not_found_error",
    "rate_limit_error": "rate_limit_error",
    "rate_limit_exceeded": "rate_limit_error",
    "requests": "rate_limit_error",
    "tokens": "rate_limit_error",
    "insufficient_quota": "rate_limit_error",
    "overloaded_error": "overloaded_error",
    "timeout_error": "timeout_error",
}


def anthropic_error_event(error: Any) -> bytes:
    """An OpenAI error object (from a chat stream) as Anthropic's `event: error`."""
    fields = error if isinstance(error, dict) else {"message": str(error)}
    kind = next(
        (
            OPENAI_TO_ANTHROPIC_ERROR[value]
            for value in (fields.get("type"), fields.get("code"))
            if isinstance(value, str) and value in OPENAI_TO_ANTHROPIC_ERROR
        ),
        "api_error",
    )
    message = fields.get("message")
    payload = {"type": "error", "error": {"type": kind, "message": str(message or "the provider failed")}}
    return sse_event("error", payload)


class ChatToMessagesStream:
    """Turns chat completion chunks into Anthropic stream events, one request at a time.

    One content block is open at a time (thinking, text or a tool call); a new kind of delta
    closes it. message_delta waits for the usage chunk the chat stream sends after its
    finish_reason (or for [DONE]), so it carries the final counts."""

    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body
        self._started = False
        self._ended = False
        self._blocks = 0
        self._open: str | None = None  # "thinking", "text" or "tool"
        self._open_index = 0
        self._signature = ""
        self._tools: dict[int, int] = {}  # chat tool call index -> block index
        self._message_id = ""
        self._finish: Any = None
        self._finished = False
        self._stop_sequence: str | None = None
        self._usage: Any = None

    def _start(self, chunk: dict[str, Any]) -> list[bytes]:
        self._started = True
        self._message_id = message_id(chunk.get("id"))
        usage = {**anthropic_usage(chunk.get("usage")), "output_tokens": 0}
        message = {
            "id": self._message_id,
            "type": "message",
            "role": "assistant",
            "model": self._body.get("model", ""),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        return [sse_event("message_start", {"type": "message_start", "message": message})]

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        events = []
        if self._open == "thinking" and self._signature:
            delta = {"type": "signature_delta", "signature": self._signature}
            events.append(self._delta(delta))
        events.append(
            sse_event("content_block_stop", {"type": "content_block_stop", "index": self._open_index})
        )
        self._open = None
        self._signature = ""
        return events

    def _open_block(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        events = self._close()
        self._open, self._open_index = kind, self._blocks
        self._blocks += 1
        payload = {"type": "content_block_start", "index": self._open_index, "content_block": block}
        return [*events, sse_event("content_block_start", payload)]

    def _delta(self, delta: dict[str, Any], index: int | None = None) -> bytes:
        at = self._open_index if index is None else index
        return sse_event("content_block_delta", {"type": "content_block_delta", "index": at, "delta": delta})

    def _thinking(self, delta: dict[str, Any]) -> list[bytes]:
        events: list[bytes] = []
        text = reasoning_text(delta)
        carried = delta.get("thinking_blocks")
        carried = [b for b in carried if isinstance(b, dict)] if isinstance(carried, list) else []
        for block in carried:
            if block.get("type") == "redacted_thinking":
                events += self._open_block(
                    "redacted", {"type": "redacted_thinking", "data": str(block.get("data", ""))}
                )
                events += self._close()
            elif not text and isinstance(block.get("thinking"), str):
                text += block["thinking"]
        if text:
            if self._open != "thinking":
                events += self._open_block("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            events.append(self._delta({"type": "thinking_delta", "thinking": text}))
        signatures = [
            b["signature"] for b in carried if isinstance(b.get("signature"), str) and b["signature"]
        ]
        if signatures and self._open == "thinking":
            self._signature += "".join(signatures)
        return events

    def _tool_call(self, call: dict[str, Any]) -> list[bytes]:
        events: list[bytes] = []
        position = call.get("index")
        position = position if isinstance(position, int) else 0
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        block_index = self._tools.get(position)
        if block_index is None:
            call_id = call.get("id")
            block = {
                "type": "tool_use",
                "id": call_id
                if isinstance(call_id, str) and call_id
                else f"toolu_{self._message_id[4:]}_{position}",
                "name": str(function.get("name") or ""),
                "input": {},
            }
            events += self._open_block("tool", block)
            block_index = self._tools[position] = self._open_index
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            events.append(self._delta({"type": "input_json_delta", "partial_json": arguments}, block_index))
        return events

    def _choice(self, choice: dict[str, Any]) -> list[bytes]:
        events: list[bytes] = []
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        events += self._thinking(delta)
        text = delta.get("content")
        if isinstance(text, str) and text:
            if self._open != "text":
                events += self._open_block("text", {"type": "text", "text": ""})
            events.append(self._delta({"type": "text_delta", "text": text}))
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict):
                events += self._tool_call(call)
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]
            self._finished = True
            self._stop_sequence = matched_stop(self._body, choice)
            events += self._close()
        return events

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        """Events for one chat chunk (already parsed from its `data:` line)."""
        if self._ended:
            return []
        if isinstance(chunk.get("error"), (dict, str)):
            return self.fail(chunk["error"])
        events = [] if self._started else self._start(chunk)
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                events += self._choice(choice)
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
            if self._finished:
                events += self._end()
        return events

    def _end(self) -> list[bytes]:
        self._ended = True
        events = self._close()
        reason = stop_reason(self._finish, tool_use=bool(self._tools), stop_sequence=self._stop_sequence)
        delta = {"stop_reason": reason, "stop_sequence": self._stop_sequence}
        usage = anthropic_usage(self._usage)
        events.append(sse_event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
        events.append(sse_event("message_stop", {"type": "message_stop"}))
        return events

    def finish(self) -> list[bytes]:
        """The closing events once the chat stream ended ([DONE])."""
        if self._ended or not self._started:
            return []
        return self._end()

    def fail(self, error: Any) -> list[bytes]:
        """Anthropic's error event for a chat stream's error; nothing follows it."""
        self._ended = True
        return [anthropic_error_event(error)]


def chat_to_messages_translator(body: dict[str, Any]) -> ChatChunkEvents:
    """A StreamTranslator from chat SSE events to Anthropic's SSE events."""
    return ChatChunkEvents(ChatToMessagesStream(body))
