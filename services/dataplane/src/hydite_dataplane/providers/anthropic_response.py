"""The Anthropic Messages API -> OpenAI chat completions: a complete message, its usage, and the
fields of an Anthropic error body.

Pure translation, no I/O. `upstream.errors` reads error bodies through `anthropic_error_fields`,
so this module imports nothing from `upstream` or `providers.base` (they import that module).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from hydite_dataplane.request import TokenUsage

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
"""Anthropic stop_reason -> OpenAI finish_reason."""

CONTEXT_LENGTH_CODE = "context_length_exceeded"
_CONTEXT_LENGTH_PHRASES = ("prompt is too long", "exceed context limit", "context window", "context length")
MAX_ERROR_TEXT_CHARS = 8000
"""More than an error message shows: redaction runs before the cut, so no key is cut in half."""


def _count(usage: Mapping[str, Any], name: str) -> int:
    value = usage.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _thinking_tokens(usage: Mapping[str, Any]) -> int:
    details = usage.get("output_tokens_details")
    return _count(details, "thinking_tokens") if isinstance(details, dict) else 0


def token_usage(usage: Any) -> TokenUsage:
    """TokenUsage of an Anthropic usage object: every input token counts as a prompt token (cache
    reads and cache writes too), cache reads are the cached tokens."""
    if not isinstance(usage, dict):
        return TokenUsage()
    reads = _count(usage, "cache_read_input_tokens")
    writes = _count(usage, "cache_creation_input_tokens")
    return TokenUsage(
        prompt_tokens=_count(usage, "input_tokens") + reads + writes,
        completion_tokens=_count(usage, "output_tokens"),
        cached_tokens=reads,
        reasoning_tokens=_thinking_tokens(usage),
        cache_write_tokens=writes,
    )


def chat_usage(usage: Any) -> dict[str, Any]:
    """An Anthropic usage object as OpenAI chat usage, with Anthropic's cache counts beside it."""
    counts = token_usage(usage)
    chat: dict[str, Any] = {
        "prompt_tokens": counts.prompt_tokens,
        "completion_tokens": counts.completion_tokens,
        "total_tokens": counts.total_tokens,
        "prompt_tokens_details": {
            "cached_tokens": counts.cached_tokens,
            "cache_creation_tokens": counts.cache_write_tokens,
        },
        "cache_read_input_tokens": counts.cached_tokens,
        "cache_creation_input_tokens": counts.cache_write_tokens,
    }
    if counts.reasoning_tokens:
        chat["completion_tokens_details"] = {"reasoning_tokens": counts.reasoning_tokens}
    return chat


def tool_call(block: Mapping[str, Any]) -> dict[str, Any]:
    """A tool_use block as an OpenAI tool call (arguments as a JSON string)."""
    return {
        "id": str(block.get("id", "")),
        "type": "function",
        "function": {
            "name": str(block.get("name", "")),
            "arguments": orjson.dumps(block.get("input", {})).decode(),
        },
    }


def thinking_block(block: Mapping[str, Any]) -> dict[str, Any]:
    """A thinking or redacted_thinking block as the client passes it back next turn."""
    if block.get("type") == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.get("data", "")}
    return {
        "type": "thinking",
        "thinking": block.get("thinking", ""),
        "signature": block.get("signature", ""),
    }


def finish_reason(stop_reason: Any, tool_calls: int) -> str:
    """OpenAI's finish_reason; a tool_use stop whose only call was the JSON answer tool is a stop."""
    reason = FINISH_REASONS.get(str(stop_reason), "stop")
    return "stop" if reason == "tool_calls" and not tool_calls else reason


def completion_from_message(
    message: Mapping[str, Any], created: int, answer_tool: str | None
) -> dict[str, Any]:
    """An Anthropic message as a chat.completion; a call of answer_tool (JSON output through a
    tool) becomes the message content."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    blocks = message.get("content")
    for block in blocks if isinstance(blocks, list) else []:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use" and answer_tool is not None and block.get("name") == answer_tool:
            texts.append(orjson.dumps(block.get("input", {})).decode())
        elif kind == "tool_use":
            calls.append(tool_call(block))
        elif kind in ("thinking", "redacted_thinking"):
            thinking.append(thinking_block(block))
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
    }
    if calls:
        reply["tool_calls"] = calls
    if thinking:
        reply["reasoning_content"] = "".join(b.get("thinking", "") for b in thinking)
        reply["thinking_blocks"] = thinking
    return {
        "id": str(message.get("id", "")),
        "object": "chat.completion",
        "created": created,
        "model": str(message.get("model", "")),
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": finish_reason(message.get("stop_reason"), len(calls)),
            }
        ],
        "usage": chat_usage(message.get("usage")),
    }


def error_code(error_type: str | None, message: str) -> str | None:
    """The gateway's code for an Anthropic error: context-window errors are context_length_exceeded
    (the router then takes context_window_fallbacks), others keep Anthropic's error type."""
    lowered = message.lower()
    if any(phrase in lowered for phrase in _CONTEXT_LENGTH_PHRASES):
        return CONTEXT_LENGTH_CODE
    return error_type


def anthropic_error_fields(body: bytes) -> tuple[str, str | None, str | None]:
    """message, code and param of `{"type": "error", "error": {"type", "message"}}`; a body of
    another shape as its text."""
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:MAX_ERROR_TEXT_CHARS].decode(errors="replace").strip(), None, None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        kind = error.get("type") or error.get("code")
        return message, error_code(str(kind) if kind else None, message), None
    if isinstance(error, str):
        return error, error_code(None, error), None
    return str(parsed)[:MAX_ERROR_TEXT_CHARS], None, None
