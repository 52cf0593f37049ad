"""Amazon Bedrock Converse answers -> OpenAI (pure): the chat.completion, finish reasons, token
usage, and the fields of Bedrock's error bodies (`{"message": ...}` with the error type in the
x-amzn-ErrorType header)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from hydite_dataplane.request import TokenUsage

Json = dict[str, Any]

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
CONTEXT_WINDOW_PHRASES = (
    "input is too long",
    "prompt is too long",
    "too many input tokens",
    "input token count",
    "maximum context length",
    "context window",
)
"""How a ValidationException says the prompt does not fit the model."""
MAX_ERROR_TEXT_CHARS = 8000


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def token_usage(usage: Any) -> TokenUsage:
    """A Converse `usage` as TokenUsage: Bedrock's inputTokens leave out cache reads and writes,
    which OpenAI's prompt_tokens include."""
    if not isinstance(usage, dict):
        return TokenUsage()
    cache_read = _count(usage.get("cacheReadInputTokens"))
    cache_write = _count(usage.get("cacheWriteInputTokens"))
    return TokenUsage(
        prompt_tokens=_count(usage.get("inputTokens")) + cache_read + cache_write,
        completion_tokens=_count(usage.get("outputTokens")),
        cached_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def openai_usage(usage: TokenUsage) -> Json:
    """An OpenAI chat `usage` object."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def finish_reason(stop_reason: Any) -> str:
    """OpenAI's finish_reason for a Converse stopReason."""
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def tool_call(block: Mapping[str, Any], index: int) -> Json:
    """An OpenAI tool call for a toolUse block."""
    return {
        "id": str(block.get("toolUseId") or f"call_{index}"),
        "type": "function",
        "function": {
            "name": str(block.get("name") or ""),
            "arguments": orjson.dumps(block.get("input", {})).decode(),
        },
    }


def chat_completion(body: Mapping[str, Any], *, model: str, created: int, completion_id: str) -> Json:
    """The chat.completion for a Converse answer."""
    output = body.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    blocks = message.get("content") if isinstance(message, dict) else None
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[Json] = []
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            text.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            calls.append(tool_call(block["toolUse"], len(calls)))
        elif isinstance(block.get("reasoningContent"), dict):
            thought = block["reasoningContent"].get("reasoningText")
            if isinstance(thought, dict) and isinstance(thought.get("text"), str):
                reasoning.append(thought["text"])
    answer: Json = {
        "role": "assistant",
        "content": "".join(text) if text or not calls else None,
        "refusal": None,
    }
    if reasoning:
        answer["reasoning_content"] = "".join(reasoning)
    if calls:
        answer["tool_calls"] = calls
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": answer,
                "finish_reason": finish_reason(body.get("stopReason")),
                "logprobs": None,
            }
        ],
        "usage": openai_usage(token_usage(body.get("usage"))),
    }


def error_type(headers: Mapping[str, str]) -> str | None:
    """The exception name of x-amzn-ErrorType (`ValidationException:http://internal...`)."""
    value = headers.get("x-amzn-errortype")
    name = value.split(":", 1)[0].strip() if value else ""
    return name or None


def bedrock_error_fields(body: bytes) -> tuple[str, str | None, str | None]:
    """`{"message": ...}` (or `Message`, and `__type` in some answers): a prompt over the model's
    window is context_length_exceeded, so context-window fallbacks apply; the code otherwise comes
    from the error type header."""
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        return body[:MAX_ERROR_TEXT_CHARS].decode(errors="replace").strip(), None, None
    message = str(parsed.get("message") or parsed.get("Message") or "")
    kind = parsed.get("__type")
    code = kind.rsplit("#", 1)[-1].split(":", 1)[0] if isinstance(kind, str) and kind else None
    if any(phrase in message.lower() for phrase in CONTEXT_WINDOW_PHRASES):
        code = "context_length_exceeded"
    return message, code, None
