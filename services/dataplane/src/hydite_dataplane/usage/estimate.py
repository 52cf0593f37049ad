"""Counting what a stream used when its provider never said (no usage frame, or the stream was cut
before it): the prompt and the text actually relayed, with the bundled tokenizer (OpenAI's
encodings; the model family's or o200k_base for other providers' models).

The relay keeps the stream's bytes as they pass (bounded, no parsing); only a stream that ends
without its usage is parsed, here, in a worker thread (the tokenizer's tables take a moment to
load the first time). Nothing is invented: output that was never relayed counts nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from hydite_dataplane.encodings import (
    MAX_COUNTED_CHARS,
    REPLY_PRIMING_TOKENS,
    TOKENS_PER_MESSAGE,
    encoding_for,
)
from hydite_dataplane.request import TokenUsage

_TEXT_FIELDS = frozenset(
    {"content", "text", "reasoning_content", "reasoning", "refusal", "arguments", "partial_json", "thinking"}
)
"""Fields whose string values are produced text, in OpenAI's, Anthropic's and Gemini's stream events."""
_SKIPPED_FIELDS = frozenset(
    {"signature", "thoughtSignature", "usage", "usageMetadata", "id", "model", "role"}
)
_SUMMARY_EVENT_TYPES = frozenset(
    {
        "response.created",
        "response.in_progress",
        "response.completed",
        "response.incomplete",
        "response.failed",
    }
)
"""Responses API events that repeat text already counted from its deltas."""
_PROMPT_FIELDS = ("system", "prompt", "input", "instructions")


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        kind = value.get("type")
        if isinstance(kind, str) and (kind.endswith(".done") or kind in _SUMMARY_EVENT_TYPES):
            return
        for name, item in value.items():
            if name in _SKIPPED_FIELDS:
                continue
            if isinstance(item, str):
                if name in _TEXT_FIELDS or (name == "delta" and kind is not None):
                    yield item
            elif name == "args" and isinstance(item, dict):  # Gemini's functionCall arguments
                yield orjson.dumps(item).decode()
            else:
                yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def produced_text(stream: bytes) -> str:
    """The text a stream's events carried (content, reasoning, tool arguments), in order."""
    parts: list[str] = []
    for line in stream.split(b"\n"):
        line = line.strip()
        if line.startswith(b"data:"):
            line = line[5:].strip()
        if not line.startswith((b"{", b"[")):
            continue
        try:
            parts += _texts(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue  # a frame cut where the kept bytes end
    return "".join(parts)


def _count(model: str, text: str) -> int:
    encoding, _ = encoding_for(model)
    return sum(
        len(encoding.encode(text[start : start + MAX_COUNTED_CHARS], disallowed_special=()))
        for start in range(0, len(text), MAX_COUNTED_CHARS)
    )


def prompt_tokens(model: str, body: dict[str, Any]) -> int:
    """The prompt's tokens: chat messages by OpenAI's counting rule, other inputs as their text."""
    messages = body.get("messages")
    total = 0
    if isinstance(messages, list):
        total += REPLY_PRIMING_TOKENS + TOKENS_PER_MESSAGE * len(messages)
        total += _count(model, "".join(_texts(messages)))
    total += _count(model, "".join(text for name in _PROMPT_FIELDS for text in _prompt_texts(body.get(name))))
    return total


def _prompt_texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    else:
        yield from _texts(value)


def estimated_stream_usage(
    model: str, body: dict[str, Any], reported: TokenUsage | None, stream: bytes
) -> TokenUsage:
    """What a stream without its closing usage is billed: the provider's counts where it gave them
    (its input count from the stream's start), else the tokenizer's of the prompt; and the larger of
    the provider's output count so far and the tokenizer's count of the output relayed."""
    produced = _count(model, produced_text(stream)) if stream else 0
    if reported is None:
        return TokenUsage(prompt_tokens=prompt_tokens(model, body), completion_tokens=produced)
    prompt = reported.prompt_tokens or prompt_tokens(model, body)
    return reported.updated_by(
        TokenUsage(prompt_tokens=prompt, completion_tokens=max(reported.completion_tokens, produced))
    )
