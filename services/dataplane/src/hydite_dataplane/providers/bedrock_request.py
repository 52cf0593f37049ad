"""OpenAI chat request -> Amazon Bedrock Converse request (pure): system blocks, alternating user and
assistant turns of content blocks (text, image and document bytes, toolUse, toolResult),
inferenceConfig, toolConfig and the model's own fields in additionalModelRequestFields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from hydite_common.errors import InvalidRequestError
from hydite_dataplane.providers.anthropic_request import REASONING_BUDGETS

Json = dict[str, Any]

PASSED_THROUGH = ("guardrailConfig", "additionalModelResponseFieldPaths", "performanceConfig")
"""Converse's own top-level fields, sent as the client or the deployment wrote them."""
IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "webp"})
DOCUMENT_FORMATS = frozenset({"pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md"})
_DOCUMENT_MIME = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
DEFAULT_THINKING_ANSWER_TOKENS = 4096
"""Room for the answer on top of a thinking budget when the client set no max_tokens."""


def refused(message: str, param: str) -> InvalidRequestError:
    """A request Bedrock's Converse API cannot take."""
    return InvalidRequestError(message, param=param)


def is_anthropic_model(model: str) -> bool:
    """Claude on Bedrock: `anthropic.claude-…`, or a cross-region inference profile `us.anthropic.…`."""
    return "anthropic." in model


def converse_url(base: str, model: str, stream: bool) -> str:
    """POST /model/{modelId}/converse(-stream); the id (an inference profile id or an ARN) is one
    path segment."""
    action = "converse-stream" if stream else "converse"
    return f"{base.rstrip('/')}/model/{quote(model, safe='')}/{action}"


def _data_url(url: str, param: str) -> tuple[str, str]:
    """(media type, base64 data) of a data: URL."""
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        raise refused("a data: URL must be base64 encoded (data:<type>;base64,...)", param)
    return header.removesuffix(";base64"), data


def _image_block(part: Mapping[str, Any], param: str) -> Json:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise refused("an image_url part needs a url", param)
    if url.startswith("s3://"):
        extension = url.rsplit(".", 1)[-1].lower()
        image_format = "jpeg" if extension == "jpg" else extension
        source: Json = {"s3Location": {"uri": url}}
    elif url.startswith("data:"):
        mime, data = _data_url(url, param)
        image_format = mime.removeprefix("image/")
        source = {"bytes": data}
    else:
        raise refused("Bedrock takes images as data: URLs (base64) or s3:// URIs, not web URLs", param)
    if image_format not in IMAGE_FORMATS:
        raise refused(f"Bedrock takes images in {', '.join(sorted(IMAGE_FORMATS))}", param)
    return {"image": {"format": image_format, "source": source}}


def _document_block(part: Mapping[str, Any], param: str, index: int) -> Json:
    file = part.get("file")
    data = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(file, dict) or not isinstance(data, str) or not data:
        raise refused("a file part needs base64 file_data for Bedrock", param)
    named = file.get("filename")
    filename = named if isinstance(named, str) and named else f"document-{index}"
    given = file.get("format")
    mime = given if isinstance(given, str) else ""
    if data.startswith("data:"):
        mime, data = _data_url(data, param)
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    document_format = _DOCUMENT_MIME.get(mime) or (extension if extension in DOCUMENT_FORMATS else "pdf")
    # Bedrock allows only letters, digits, spaces, hyphens, parentheses and brackets in a name.
    stem = filename.rsplit(".", 1)[0] if extension else filename
    name = "".join(c if c.isalnum() or c in " -()[]" else "-" for c in stem)[:200] or f"document-{index}"
    return {"document": {"format": document_format, "name": name, "source": {"bytes": data}}}


def _content_blocks(content: Any, param: str) -> list[Json]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise refused("content must be a string or an array of parts", param)
    blocks: list[Json] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("text", "refusal"):
            text = part.get(kind)
            if not isinstance(text, str):
                raise refused(f"a {kind} part needs a string '{kind}'", param)
            if text:
                blocks.append({"text": text})
        elif kind == "image_url":
            blocks.append(_image_block(part, param))
        elif kind == "file":
            blocks.append(_document_block(part, param, index))
        else:
            raise refused(f"content part type {kind!r} is not supported for Bedrock", param)
    return blocks


def _text_of(content: Any, param: str) -> str:
    return "".join(block["text"] for block in _content_blocks(content, param) if "text" in block)


def _tool_uses(calls: Any, param: str) -> list[Json]:
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise refused("tool_calls must be an array", param)
    blocks: list[Json] = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise refused("a tool call needs a function with a name", param)
        arguments = function.get("arguments") or "{}"
        try:
            parsed = orjson.loads(arguments) if isinstance(arguments, str) else arguments
        except orjson.JSONDecodeError:
            raise refused("a tool call's arguments must be a JSON object", param) from None
        if not isinstance(parsed, dict):
            raise refused("a tool call's arguments must be a JSON object", param)
        blocks.append(
            {"toolUse": {"toolUseId": str(call.get("id") or ""), "name": function["name"], "input": parsed}}
        )
    return blocks


def _tool_result(message: Mapping[str, Any], param: str) -> Json:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise refused("a tool message needs a tool_call_id", param)
    blocks = [b for b in _content_blocks(message.get("content"), param) if "text" in b or "image" in b]
    return {"toolResult": {"toolUseId": call_id, "content": blocks or [{"text": ""}]}}


def conversation(messages: Any) -> tuple[list[Json], list[Json]]:
    """(system blocks, messages): system and developer messages become system blocks; tool results
    join the user turn; consecutive turns of one role merge, as Converse wants them alternating."""
    if not isinstance(messages, list) or not messages:
        raise refused("'messages' must be a non-empty array", "messages")
    system: list[Json] = []
    turns: list[Json] = []
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("system", "developer"):
            text = _text_of(message.get("content"), param)
            if text:
                system.append({"text": text})
            continue
        if role == "user":
            blocks, speaker = _content_blocks(message.get("content"), param), "user"
        elif role == "assistant":
            blocks = _content_blocks(message.get("content"), param) + _tool_uses(
                message.get("tool_calls"), param
            )
            speaker = "assistant"
        elif role == "tool":
            blocks, speaker = [_tool_result(message, param)], "user"
        else:
            raise refused(f"message role {role!r} is not supported", f"{param}.role")
        if not blocks:
            continue
        if turns and turns[-1]["role"] == speaker:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": speaker, "content": blocks})
    if not turns:
        raise refused("'messages' needs at least one user message with content", "messages")
    return system, turns


def _number(body: Mapping[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise refused(f"'{name}' must be a number", name)
    return value


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise refused(f"'{name}' must be a positive integer", name)
        return value
    return None


def _stop_sequences(stop: Any) -> list[str] | None:
    if stop is None:
        return None
    sequences = [stop] if isinstance(stop, str) else stop
    if not isinstance(sequences, list) or not all(isinstance(s, str) for s in sequences):
        raise refused("'stop' must be a string or an array of strings", "stop")
    return sequences or None


def _tool_spec(tool: Any, index: int) -> Json:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise refused("only function tools with a name are supported for Bedrock", f"tools[{index}]")
    spec: Json = {"name": function["name"]}
    if isinstance(function.get("description"), str) and function["description"]:
        spec["description"] = function["description"]
    parameters = function.get("parameters")
    spec["inputSchema"] = {"json": parameters if isinstance(parameters, dict) else {"type": "object"}}
    return {"toolSpec": spec}


def _tool_choice(choice: Any) -> Json | None:
    if choice is None or choice == "auto":
        return {"auto": {}}
    if choice == "required":
        return {"any": {}}
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"tool": {"name": function["name"]}}
    raise refused("tool_choice must be 'none', 'auto', 'required' or a named function", "tool_choice")


def tool_config(body: Mapping[str, Any], turns: list[Json]) -> Json | None:
    """Converse's toolConfig; `tool_choice: none` leaves the tools out unless the conversation
    already holds tool blocks (Converse then needs them declared), as Converse has no "none"."""
    tools = body.get("tools")
    if not tools:
        return None
    if not isinstance(tools, list):
        raise refused("'tools' must be an array", "tools")
    choice = body.get("tool_choice")
    if choice == "none":
        used = any("toolUse" in b or "toolResult" in b for turn in turns for b in turn["content"])
        return {"tools": [_tool_spec(t, i) for i, t in enumerate(tools)]} if used else None
    return {"tools": [_tool_spec(t, i) for i, t in enumerate(tools)], "toolChoice": _tool_choice(choice)}


def model_fields(body: Mapping[str, Any], model: str) -> Json:
    """additionalModelRequestFields: the client's own, Anthropic's `thinking` as it was sent, and
    the thinking budget reasoning_effort asks for on Claude models."""
    found = body.get("additionalModelRequestFields")
    if found is not None and not isinstance(found, dict):
        raise refused("'additionalModelRequestFields' must be an object", "additionalModelRequestFields")
    fields: Json = dict(found or {})
    if "thinking" in body:
        fields["thinking"] = body["thinking"]
    effort = body.get("reasoning_effort")
    if effort is not None and "thinking" not in fields and is_anthropic_model(model):
        if effort == "none":
            return fields
        if effort not in REASONING_BUDGETS:
            raise refused(
                f"reasoning_effort must be one of none, {', '.join(REASONING_BUDGETS)}", "reasoning_effort"
            )
        fields["thinking"] = {"type": "enabled", "budget_tokens": REASONING_BUDGETS[effort]}
    return fields


def inference_config(body: Mapping[str, Any], thinking_budget: int | None) -> Json:
    """maxTokens, temperature, topP and stopSequences; a thinking budget counts toward maxTokens,
    so the answer's allowance comes on top of it."""
    config: Json = {}
    max_tokens = _max_tokens(body)
    if thinking_budget is not None:
        allowance = max_tokens if max_tokens is not None else DEFAULT_THINKING_ANSWER_TOKENS
        max_tokens = allowance + thinking_budget if allowance <= thinking_budget else allowance
    if max_tokens is not None:
        config["maxTokens"] = max_tokens
    for name, field in (("temperature", "temperature"), ("top_p", "topP")):
        value = _number(body, name)
        if value is not None:
            config[field] = value
    stop = _stop_sequences(body.get("stop"))
    if stop:
        config["stopSequences"] = stop
    return config


def converse_request(body: Mapping[str, Any], model: str) -> Json:
    """The Converse (or ConverseStream) request body for an OpenAI chat body."""
    system, turns = conversation(body.get("messages"))
    request: Json = {"messages": turns}
    if system:
        request["system"] = system
    fields = model_fields(body, model)
    thinking = fields.get("thinking")
    budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
    config = inference_config(body, budget if isinstance(budget, int) else None)
    if config:
        request["inferenceConfig"] = config
    tools = tool_config(body, turns)
    if tools is not None:
        request["toolConfig"] = tools
    if fields:
        request["additionalModelRequestFields"] = fields
    for name in PASSED_THROUGH:
        if body.get(name) is not None:
            request[name] = body[name]
    return request
