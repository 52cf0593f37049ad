"""OpenAI chat messages -> an Anthropic system prompt and alternating user/assistant turns:
content parts as content blocks (images, documents, tool results, thinking kept for the next
turn), consecutive turns of one role merged. Pure translation, no I/O."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import orjson

from hydite_common.errors import InvalidRequestError

FILES_API_BETA = "files-api-2025-04-14"
"""Documents given by file id are read from Anthropic's Files API, a beta."""

ANTHROPIC_BLOCK_TYPES = frozenset(
    {
        "text", "image", "document", "search_result", "tool_use", "tool_result", "thinking",
        "redacted_thinking", "server_tool_use", "web_search_tool_result", "container_upload",
    }
)  # fmt: skip
"""Content blocks already in Anthropic's shape, passed through inside a message."""


def refused(message: str, param: str) -> InvalidRequestError:
    """The 400 for a request the Messages API cannot express, naming the parameter."""
    return InvalidRequestError(message, param=param)


def with_cache_control(block: dict[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    """block, with the cache_control source carries (a part, a message or a tool)."""
    if source.get("cache_control") is not None:
        block["cache_control"] = source["cache_control"]
    return block


def _media_block(url: Any, param: str) -> dict[str, Any]:
    """An image or document block for a data: URL (base64) or an http(s) URL."""
    if not isinstance(url, str):
        raise refused("an image or file URL must be a string", param)
    if url.startswith("data:"):
        header, comma, data = url.partition(",")
        if not comma or not header.endswith(";base64"):
            raise refused("a data: URL must be base64 encoded (data:<media type>;base64,<data>)", param)
        media_type = header[len("data:") : -len(";base64")]
        if media_type.startswith("text/"):
            try:
                text = base64.b64decode(data, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise refused("a text file must be base64 of UTF-8 text", param) from None
            source: dict[str, Any] = {"type": "text", "media_type": "text/plain", "data": text}
            return {"type": "document", "source": source}
        kind = "document" if media_type == "application/pdf" else "image"
        return {"type": kind, "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        kind = "document" if url.split("?", 1)[0].lower().endswith(".pdf") else "image"
        return {"type": kind, "source": {"type": "url", "url": url}}
    raise refused("an image or file URL must be a data: URL or an http(s) URL", param)


class ContentTranslation:
    """Content parts as blocks, for one request; it gathers the betas the blocks need."""

    def __init__(self) -> None:
        self.betas: list[str] = []

    def part(self, part: Any, param: str) -> dict[str, Any]:
        """One OpenAI content part as an Anthropic content block."""
        if isinstance(part, str):
            return {"type": "text", "text": part}
        kind = part.get("type") if isinstance(part, dict) else None
        if not isinstance(part, dict) or kind is None:
            raise refused("every content part must be an object with a type", param)
        if kind == "text":
            return with_cache_control({"type": "text", "text": str(part.get("text", ""))}, part)
        if kind == "refusal":
            return {"type": "text", "text": str(part.get("refusal", ""))}
        if kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            return with_cache_control(_media_block(url, param), part)
        if kind == "file":
            return with_cache_control(self._file_block(part.get("file"), param), part)
        if kind == "input_audio":
            raise refused("Anthropic models do not take audio input", param)
        if kind in ANTHROPIC_BLOCK_TYPES:
            return dict(part)
        raise refused(f"content part type {kind!r} is not supported", param)

    def _file_block(self, file: Any, param: str) -> dict[str, Any]:
        if not isinstance(file, dict):
            raise refused("a file part needs a 'file' object", param)
        if file.get("file_data"):
            return _media_block(file["file_data"], param)
        if isinstance(file.get("file_id"), str):
            self.betas.append(FILES_API_BETA)
            return {"type": "document", "source": {"type": "file", "file_id": file["file_id"]}}
        raise refused("a file part needs file_data or file_id", param)

    def blocks(self, content: Any, param: str) -> list[dict[str, Any]]:
        """A message's content (string or parts) as content blocks."""
        if content is None:
            return []
        if isinstance(content, str):
            return [{"type": "text", "text": content}] if content else []
        if not isinstance(content, list):
            raise refused("message content must be a string or an array of parts", param)
        return [self.part(part, param) for part in content]


def _tool_use(call: Any, param: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise refused("every tool call needs a function with a name", param)
    arguments = function.get("arguments") or "{}"
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str) else arguments
    except orjson.JSONDecodeError:
        raise refused("tool call arguments must be a JSON object", param) from None
    if not isinstance(parsed, dict):
        raise refused("tool call arguments must be a JSON object", param)
    return {"type": "tool_use", "id": str(call.get("id", "")), "name": function["name"], "input": parsed}


def _thinking_blocks(blocks: Any) -> list[dict[str, Any]]:
    """An assistant's thinking_blocks as Anthropic sent them (signatures kept)."""
    kept: list[dict[str, Any]] = []
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "thinking":
            kept.append(
                {
                    "type": "thinking",
                    "thinking": block.get("thinking", ""),
                    "signature": block.get("signature", ""),
                }
            )
        elif block.get("type") == "redacted_thinking":
            kept.append({"type": "redacted_thinking", "data": block.get("data", "")})
    return kept


Turn = tuple[str, str | list[dict[str, Any]]]


def _turn(message: dict[str, Any], index: int, translation: ContentTranslation) -> Turn:
    """One non-system OpenAI message as (Anthropic role, content)."""
    param = f"messages[{index}]"
    role = message.get("role")
    content = message.get("content")
    if role == "user":
        if isinstance(content, str) and message.get("cache_control") is None:
            return "user", content
        blocks = translation.blocks(content, f"{param}.content")
    elif role == "assistant":
        plain = not message.get("thinking_blocks") and not message.get("tool_calls")
        if isinstance(content, str) and plain and message.get("cache_control") is None:
            return "assistant", content
        blocks = _thinking_blocks(message.get("thinking_blocks"))
        blocks += [
            b
            for b in translation.blocks(content, f"{param}.content")
            if not (b.get("type") == "text" and b.get("text") == "")
        ]
        blocks += [_tool_use(call, f"{param}.tool_calls") for call in message.get("tool_calls") or []]
    elif role == "tool":
        result: str | list[dict[str, Any]] = (
            content if isinstance(content, str) else translation.blocks(content, f"{param}.content")
        )
        tool_result = {
            "type": "tool_result",
            "tool_use_id": str(message.get("tool_call_id", "")),
            "content": result,
        }
        return "user", [with_cache_control(tool_result, message)]
    else:
        raise refused(f"message role {role!r} is not supported", f"{param}.role")
    if blocks and message.get("cache_control") is not None:
        blocks[-1] = with_cache_control(dict(blocks[-1]), message)
    return role, blocks


def _as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _merged(turns: list[Turn]) -> list[dict[str, Any]]:
    """Consecutive turns of one role as one message (Anthropic's roles alternate); in a user turn,
    tool results come first, as Anthropic requires."""
    messages: list[dict[str, Any]] = []
    for role, content in turns:
        if messages and messages[-1]["role"] == role:
            previous = messages[-1]
            previous["content"] = _as_blocks(previous["content"]) + _as_blocks(content)
        else:
            messages.append({"role": role, "content": content})
    for message in messages:
        content = message["content"]
        if message["role"] == "user" and isinstance(content, list):
            results = [b for b in content if b.get("type") == "tool_result"]
            message["content"] = results + [b for b in content if b.get("type") != "tool_result"]
    return messages


def _system(
    messages: list[dict[str, Any]], translation: ContentTranslation
) -> str | list[dict[str, Any]] | None:
    """System and developer messages as the top-level system prompt: one string when they are all
    plain strings, else text blocks (which carry cache_control)."""
    if not messages:
        return None
    blocks: list[dict[str, Any]] = []
    for message in messages:
        found = translation.blocks(message.get("content"), "messages.content")
        if any(b.get("type") != "text" for b in found):
            raise refused("system messages may hold text only", "messages")
        if found and message.get("cache_control") is not None:
            found[-1] = with_cache_control(dict(found[-1]), message)
        blocks += found
    plain = all(isinstance(m.get("content"), str) for m in messages)
    if plain and not any("cache_control" in b for b in blocks):
        return "\n\n".join(b["text"] for b in blocks)
    return blocks


def conversation(
    messages: Any, translation: ContentTranslation
) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """(system prompt or None, Anthropic messages) for OpenAI chat messages."""
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise refused("'messages' must be an array of message objects", "messages")
    system = [m for m in messages if m.get("role") in ("system", "developer")]
    turns = [
        _turn(m, i, translation)
        for i, m in enumerate(messages)
        if m.get("role") not in ("system", "developer")
    ]
    if not turns:
        raise refused("'messages' needs at least one user or assistant message", "messages")
    return _system(system, translation), _merged(turns)
