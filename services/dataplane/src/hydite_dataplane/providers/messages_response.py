"""OpenAI chat completions -> Anthropic's Messages API: a chat.completion as the `message` object,
and the pieces the stream translation shares (usage, stop reason, ids, reasoning text). Pure, no I/O.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

RAW_ARGUMENTS_KEY = "_raw_arguments"
"""The input key that carries tool-call arguments that were not a JSON object."""

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def anthropic_usage(chat_usage: Any) -> dict[str, int]:
    """Chat usage in Anthropic's shape: input_tokens leaves out cache reads and cache writes, which
    chat's prompt_tokens includes (writes as OpenRouter's cache_write_tokens, or the
    cache_creation_tokens / cache_creation_input_tokens of a translated Anthropic answer)."""
    if not isinstance(chat_usage, dict):
        chat_usage = {}
    details = chat_usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    cached = _count(details.get("cached_tokens"))
    written = (
        _count(details.get("cache_write_tokens"))
        or _count(details.get("cache_creation_tokens"))
        or _count(chat_usage.get("cache_creation_input_tokens"))
    )
    return {
        "input_tokens": max(0, _count(chat_usage.get("prompt_tokens")) - cached - written),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
        "output_tokens": _count(chat_usage.get("completion_tokens")),
    }


def matched_stop(body: dict[str, Any], choice: dict[str, Any]) -> str | None:
    """The stop sequence that ended the answer, when the chat answer names it."""
    matched = choice.get("stop_reason")
    stops = body.get("stop_sequences")
    return matched if isinstance(matched, str) and isinstance(stops, list) and matched in stops else None


def stop_reason(finish: Any, *, tool_use: bool, stop_sequence: str | None) -> str:
    """Anthropic's stop_reason for a chat finish_reason (a tool call is always tool_use)."""
    if finish == "length":
        return "max_tokens"
    if tool_use and finish != "content_filter":
        return "tool_use"
    if stop_sequence is not None:
        return "stop_sequence"
    return STOP_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"


def tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's arguments as a tool_use input (see RAW_ARGUMENTS_KEY for ones that are not an
    object)."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {RAW_ARGUMENTS_KEY: arguments}
    return parsed if isinstance(parsed, dict) else {RAW_ARGUMENTS_KEY: arguments}


def reasoning_text(fields: dict[str, Any]) -> str:
    """A chat message's (or delta's) reasoning text: `reasoning_content`, else `reasoning`."""
    for name in ("reasoning_content", "reasoning"):
        value = fields.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _thinking_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Thinking blocks, as the chat message carried them (with signatures), else its reasoning text."""
    carried = message.get("thinking_blocks")
    if isinstance(carried, list) and carried:
        blocks: list[dict[str, Any]] = []
        for block in carried:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "redacted_thinking":
                blocks.append({"type": "redacted_thinking", "data": str(block.get("data", ""))})
            else:
                blocks.append(
                    {
                        "type": "thinking",
                        "thinking": str(block.get("thinking", "")),
                        "signature": str(block.get("signature", "")),
                    }
                )
        return blocks
    text = reasoning_text(message)
    return [{"type": "thinking", "thinking": text, "signature": ""}] if text else []


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    if isinstance(content, str) and content:
        return content
    refusal = message.get("refusal")
    return refusal if isinstance(refusal, str) else ""


def message_id(chat_id: Any) -> str:
    """A message id for a chat completion's id (a new one when it has none)."""
    if isinstance(chat_id, str) and chat_id:
        return "msg_" + chat_id.removeprefix("chatcmpl-")
    return f"msg_{uuid.uuid4().hex}"


def _tool_use(call: dict[str, Any], fallback_id: str) -> dict[str, Any]:
    function = call.get("function")
    function = function if isinstance(function, dict) else {}
    call_id = call.get("id")
    return {
        "type": "tool_use",
        "id": call_id if isinstance(call_id, str) and call_id else fallback_id,
        "name": str(function.get("name") or ""),
        "input": tool_input(function.get("arguments")),
    }


def from_chat_response(body: dict[str, Any], completion: dict[str, Any]) -> dict[str, Any]:
    """A chat.completion as the `message` of the original Messages request."""
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    msg_id = message_id(completion.get("id"))
    content = _thinking_blocks(message)
    if text := _message_text(message):
        content.append({"type": "text", "text": text})
    calls = message.get("tool_calls")
    calls = [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
    content += [_tool_use(call, f"toolu_{msg_id[4:]}_{n}") for n, call in enumerate(calls)]
    matched = matched_stop(body, choice)
    finish = choice.get("finish_reason")
    if message.get("refusal") and not message.get("content"):
        finish = "content_filter"
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": body.get("model", ""),
        "content": content,
        "stop_reason": stop_reason(finish, tool_use=bool(calls), stop_sequence=matched),
        "stop_sequence": matched,
        "usage": anthropic_usage(completion.get("usage")),
    }
