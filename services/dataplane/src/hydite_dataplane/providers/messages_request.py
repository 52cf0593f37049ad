"""Anthropic's Messages API -> OpenAI chat completions: a Messages request as the chat request a
provider without a Messages API answers (pure, no I/O; the choices are in `messages_via_chat`)."""

from __future__ import annotations

from typing import Any

import orjson

from hydite_common.errors import InvalidRequestError
from hydite_dataplane.providers.messages_response import RAW_ARGUMENTS_KEY

THINKING_BUDGET_EFFORTS = ((4096, "low"), (16384, "medium"))
"""budget_tokens below the bound -> reasoning_effort; larger budgets are "high"."""
EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}


def _block_type(block: Any, param: str) -> str:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise InvalidRequestError(f"{param}: every content block must be an object with a type", param=param)
    return str(block["type"])


def _text(block: dict[str, Any], param: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise InvalidRequestError(f"{param}: a text block needs a string 'text'", param=param)
    return text


def _image_part(block: dict[str, Any], param: str) -> dict[str, Any]:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source, dict):
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    elif kind == "url" and isinstance(source, dict) and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise InvalidRequestError(
            f"{param}: image source type {kind!r} needs a provider with a native Messages API", param=param
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _document_parts(block: dict[str, Any], param: str) -> list[dict[str, Any]]:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "text" and isinstance(source, dict):
        return [{"type": "text", "text": str(source.get("data", ""))}]
    if kind == "base64" and isinstance(source, dict):
        media_type = source.get("media_type", "application/pdf")
        filename = block.get("title") if isinstance(block.get("title"), str) else "document.pdf"
        file_data = f"data:{media_type};base64,{source.get('data', '')}"
        return [{"type": "file", "file": {"filename": filename, "file_data": file_data}}]
    if kind == "content" and isinstance(source, dict):
        inner = source.get("content")
        if isinstance(inner, str):
            return [{"type": "text", "text": inner}]
        if isinstance(inner, list):
            return [_content_part(b, param) for b in inner]
    raise InvalidRequestError(
        f"{param}: document source type {kind!r} needs a provider with a native Messages API", param=param
    )


def _content_part(block: Any, param: str) -> dict[str, Any]:
    """A text or image block as one chat content part."""
    kind = _block_type(block, param)
    if kind == "text":
        return {"type": "text", "text": _text(block, param)}
    if kind == "image":
        return _image_part(block, param)
    raise InvalidRequestError(f"{param}: content block type {kind!r} is not supported here", param=param)


def _chat_content(parts: list[dict[str, Any]]) -> Any:
    """Chat content for parts: one string when they are all text, else the parts."""
    if all(part["type"] == "text" for part in parts):
        return "\n".join(part["text"] for part in parts)
    return parts


def _tool_result(block: dict[str, Any], param: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A tool_result as a tool message, and the images it carried (they go in a user message)."""
    content = block.get("content", "")
    images: list[dict[str, Any]] = []
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        texts = []
        for inner in content:
            kind = _block_type(inner, param)
            if kind == "text":
                texts.append(_text(inner, param))
            elif kind == "image":
                images.append(_image_part(inner, param))
            elif kind == "document":
                parts = _document_parts(inner, param)
                texts += [p["text"] for p in parts if p["type"] == "text"]
                images += [p for p in parts if p["type"] != "text"]
            else:
                raise InvalidRequestError(
                    f"{param}: tool_result content type {kind!r} is not supported here", param=param
                )
        text = "\n".join(texts)
    else:
        raise InvalidRequestError(f"{param}: tool_result content must be a string or blocks", param=param)
    if block.get("is_error") is True:
        text = f"Error: {text}"
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str):
        raise InvalidRequestError(f"{param}: a tool_result needs a string tool_use_id", param=param)
    return {"role": "tool", "tool_call_id": tool_use_id, "content": text}, images


def _user_messages(content: list[Any], param: str) -> list[dict[str, Any]]:
    """One user turn's blocks, in order: tool results as tool messages, the rest as user messages."""
    messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    tool_images: list[dict[str, Any]] = []
    for block in content:
        kind = _block_type(block, param)
        if kind == "tool_result":
            if parts:
                messages.append({"role": "user", "content": _chat_content(parts)})
                parts = []
            tool_message, images = _tool_result(block, param)
            messages.append(tool_message)
            tool_images += images
            continue
        # The images of the tool results just passed come first, after every tool message.
        parts += tool_images
        tool_images = []
        if kind == "document":
            parts += _document_parts(block, param)
        else:
            parts.append(_content_part(block, param))
    parts = tool_images + parts
    if parts:
        messages.append({"role": "user", "content": _chat_content(parts)})
    return messages


def _tool_arguments(value: Any) -> str:
    if (
        isinstance(value, dict)
        and set(value) == {RAW_ARGUMENTS_KEY}
        and isinstance(value[RAW_ARGUMENTS_KEY], str)
    ):
        return str(value[RAW_ARGUMENTS_KEY])
    return orjson.dumps(value if value is not None else {}).decode()


def _assistant_message(content: list[Any], param: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        kind = _block_type(block, param)
        if kind == "text":
            texts.append(_text(block, param))
        elif kind == "tool_use":
            function = {"name": block.get("name"), "arguments": _tool_arguments(block.get("input"))}
            calls.append({"id": block.get("id"), "type": "function", "function": function})
        elif kind not in ("thinking", "redacted_thinking"):
            raise InvalidRequestError(
                f"{param}: assistant content type {kind!r} needs a provider with a native Messages API",
                param=param,
            )
    message: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _system_message(system: Any) -> dict[str, Any] | None:
    if system is None:
        return None
    if isinstance(system, str):
        return {"role": "system", "content": system} if system else None
    if not isinstance(system, list):
        raise InvalidRequestError("system: must be a string or an array of text blocks", param="system")
    texts = []
    for block in system:
        if _block_type(block, "system") != "text":
            raise InvalidRequestError("system: only text blocks are allowed", param="system")
        texts.append(_text(block, "system"))
    return {"role": "system", "content": "\n".join(texts)} if texts else None


def chat_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The system prompt and every turn of a Messages request as chat messages."""
    messages: list[dict[str, Any]] = []
    if (system := _system_message(body.get("system"))) is not None:
        messages.append(system)
    turns = body.get("messages")
    if not isinstance(turns, list):
        raise InvalidRequestError("messages: Input should be a valid list", param="messages")
    for number, turn in enumerate(turns):
        param = f"messages.{number}"
        role = turn.get("role") if isinstance(turn, dict) else None
        content = turn.get("content") if isinstance(turn, dict) else None
        if role not in ("user", "assistant"):
            raise InvalidRequestError(f"{param}.role: must be 'user' or 'assistant'", param=f"{param}.role")
        if isinstance(content, str):
            messages.append({"role": role, "content": content})
        elif not isinstance(content, list):
            raise InvalidRequestError(
                f"{param}.content: must be a string or an array of blocks", param=f"{param}.content"
            )
        elif role == "user":
            messages += _user_messages(content, f"{param}.content")
        else:
            messages.append(_assistant_message(content, f"{param}.content"))
    return messages


def chat_tools(tools: Any) -> list[dict[str, Any]]:
    """Custom tools as chat functions (input_schema as parameters)."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidRequestError("tools: must be an array", param="tools")
    functions: list[dict[str, Any]] = []
    for tool in tools:
        kind = tool.get("type", "custom") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or kind not in ("custom", None) or "input_schema" not in tool:
            raise InvalidRequestError(
                f"tool type {kind!r} needs a provider with a native Messages API", param="tools"
            )
        if not isinstance(tool.get("name"), str):
            raise InvalidRequestError("tools: every tool needs a string name", param="tools")
        function: dict[str, Any] = {"name": tool["name"]}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        function["parameters"] = tool["input_schema"]
        if isinstance(tool.get("strict"), bool):
            function["strict"] = tool["strict"]
        functions.append({"type": "function", "function": function})
    return functions


def _tool_choice(choice: Any) -> tuple[Any, bool]:
    """The chat tool_choice, and whether parallel tool calls are switched off."""
    if not isinstance(choice, dict):
        raise InvalidRequestError("tool_choice: must be an object with a type", param="tool_choice")
    kind = choice.get("type")
    serial = choice.get("disable_parallel_tool_use") is True
    if kind == "auto":
        return "auto", serial
    if kind == "any":
        return "required", serial
    if kind == "none":
        return "none", False
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}, serial
    raise InvalidRequestError(f"tool_choice: type {kind!r} is not supported", param="tool_choice")


def reasoning_effort(body: dict[str, Any]) -> str | None:
    """The chat reasoning_effort for `output_config.effort`, else for `thinking`'s budget."""
    output_config = body.get("output_config")
    effort = output_config.get("effort") if isinstance(output_config, dict) else None
    if isinstance(effort, str) and effort in EFFORTS:
        return EFFORTS[effort]
    thinking = body.get("thinking")
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "adaptive":
        return "medium"
    if kind != "enabled" or not isinstance(thinking, dict):
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise InvalidRequestError(
            "thinking.budget_tokens: must be an integer", param="thinking.budget_tokens"
        )
    return next((effort for bound, effort in THINKING_BUDGET_EFFORTS if budget < bound), "high")


def _response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    output_config = body.get("output_config")
    fmt = output_config.get("format") if isinstance(output_config, dict) else None
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise InvalidRequestError("output_config.format: must be a json_schema", param="output_config.format")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt["schema"]}}


def to_chat_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    """A Messages request as a chat completions request for `model`."""
    if body.get("mcp_servers"):
        raise InvalidRequestError(
            "mcp_servers needs a provider with a native Messages API", param="mcp_servers"
        )
    chat: dict[str, Any] = {"model": model, "messages": chat_messages(body)}
    effort = reasoning_effort(body)
    chat["max_completion_tokens" if effort is not None else "max_tokens"] = body.get("max_tokens")
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            chat[name] = body[name]
    stop = body.get("stop_sequences")
    if stop:
        chat["stop"] = stop
    if effort is not None:
        chat["reasoning_effort"] = effort
    if tools := chat_tools(body.get("tools")):
        chat["tools"] = tools
        if body.get("tool_choice") is not None:
            choice, serial = _tool_choice(body["tool_choice"])
            chat["tool_choice"] = choice
            if serial:
                chat["parallel_tool_calls"] = False
    if (response_format := _response_format(body)) is not None:
        chat["response_format"] = response_format
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        chat["user"] = metadata["user_id"]
    if body.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat
