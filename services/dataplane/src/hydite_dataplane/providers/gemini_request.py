"""OpenAI chat completions -> a Gemini GenerateContentRequest (pure, no I/O).

Messages become `contents` (assistant -> model; system and developer -> `systemInstruction`;
tool results -> `functionResponse` parts of a user turn), consecutive turns of one role are merged,
tools become function declarations whose parameters are JSON Schema (`parametersJsonSchema`), and
sampling parameters land in `generationConfig`. Gemini's own fields in the body (`safetySettings`,
`thinkingConfig`, `cachedContent`, ...) pass through, named in lowerCamel.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from hydite_common.errors import InvalidRequestError

Json = dict[str, Any]

NATIVE_REQUEST_FIELDS = ("safetySettings", "cachedContent", "labels", "toolConfig")
"""GenerateContentRequest fields a client may send as they are (snake_case spellings too)."""
NATIVE_GENERATION_FIELDS = (
    "thinkingConfig", "topK", "responseModalities", "speechConfig", "mediaResolution", "imageConfig",
    "responseMimeType", "responseSchema", "responseJsonSchema", "enableEnhancedCivicAnswers",
    "candidateCount", "maxOutputTokens", "stopSequences", "responseLogprobs",
)  # fmt: skip
"""GenerationConfig fields a client may send at the top of its body."""

THINKING_BUDGETS = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
"""Thinking tokens per reasoning_effort: the top is Gemini 2.5 Flash's largest budget."""
LOWEST_PRO_BUDGET = 128
"""Pro models cannot turn thinking off; "none" asks them for their least."""
SKIPPED_SIGNATURE = "skip_thought_signature_validator"
"""Google's documented stand-in for a function call whose thought signature the client dropped."""

_ROLE_OF = {"user": "user", "assistant": "model", "tool": "user"}
_MIME_BY_EXTENSION = {
    "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif",
    "webp": "image/webp", "heic": "image/heic", "heif": "image/heif", "pdf": "application/pdf",
    "txt": "text/plain", "md": "text/md", "csv": "text/csv", "html": "text/html", "xml": "text/xml",
    "json": "application/json", "mp3": "audio/mp3", "wav": "audio/wav", "flac": "audio/flac",
    "aac": "audio/aac", "ogg": "audio/ogg", "aiff": "audio/aiff", "mp4": "video/mp4",
    "mpeg": "video/mpeg", "mov": "video/mov", "avi": "video/avi", "webm": "video/webm",
    "wmv": "video/wmv", "flv": "video/x-flv", "3gp": "video/3gpp",
}  # fmt: skip
_REMOTE_PREFIXES = ("https://", "http://", "gs://")
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_VALUES = ("items", "additionalProperties", "not", "contains", "if", "then", "else")
_DROPPED_SCHEMA_KEYS = frozenset({"$schema", "strict"})


def camel(name: str) -> str:
    """thinking_config -> thinkingConfig (lowerCamel names are left as they are)."""
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def native_fields(body: Mapping[str, Any], names: tuple[str, ...]) -> Json:
    """The fields of body named in names (or in their snake_case spelling), keyed in lowerCamel."""
    found: Json = {}
    for key, value in body.items():
        name = camel(key)
        if name in names and value is not None:
            found[name] = value
    return found


def cleaned_schema(schema: Any) -> Any:
    """A JSON Schema as Gemini's JSON Schema fields take it: without `$schema` and OpenAI's
    `strict`, and with nothing but `$` keywords beside a `$ref` (which Gemini requires)."""
    if not isinstance(schema, dict):
        return schema
    referring = "$ref" in schema
    cleaned: Json = {}
    for key, value in schema.items():
        if key in _DROPPED_SCHEMA_KEYS or (referring and not key.startswith("$")):
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            cleaned[key] = {name: cleaned_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            cleaned[key] = [cleaned_schema(sub) for sub in value]
        elif key in _SCHEMA_VALUES:
            cleaned[key] = cleaned_schema(value)
        else:
            cleaned[key] = value
    return cleaned


def guessed_mime(uri: str, default: str) -> str:
    """The media type a file's extension names, else default."""
    path = uri.split("?", 1)[0].split("#", 1)[0]
    extension = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return _MIME_BY_EXTENSION.get(extension, default)


def media_part(source: str, param: str, default_mime: str, mime: str | None = None) -> Json:
    """A data: URL as inlineData, an http(s) or gs:// URI as fileData."""
    if source.startswith("data:"):
        header, sep, data = source[5:].partition(",")
        if not sep or not header.endswith(";base64"):
            raise InvalidRequestError(
                "a data: URL must be base64 encoded (data:<type>;base64,...)", param=param
            )
        return {
            "inlineData": {"mimeType": header.removesuffix(";base64") or mime or default_mime, "data": data}
        }
    if source.startswith(_REMOTE_PREFIXES):
        return {"fileData": {"mimeType": mime or guessed_mime(source, default_mime), "fileUri": source}}
    raise InvalidRequestError("expected a data: URL or an http(s):// or gs:// URI", param=param)


def _file_part(file: Any, param: str) -> Json:
    if not isinstance(file, dict):
        raise InvalidRequestError("a file part needs a 'file' object", param=param)
    mime = file.get("format") if isinstance(file.get("format"), str) else None
    filename = file.get("filename")
    name = filename if isinstance(filename, str) else ""
    data = file.get("file_data")
    if isinstance(data, str) and data:
        if data.startswith("data:"):
            return media_part(data, param, "application/pdf", mime)
        return {"inlineData": {"mimeType": mime or guessed_mime(name, "application/pdf"), "data": data}}
    file_id = file.get("file_id")
    if isinstance(file_id, str) and file_id.startswith(_REMOTE_PREFIXES):
        return media_part(file_id, param, guessed_mime(name, "application/pdf"), mime)
    raise InvalidRequestError(
        "a file part needs file_data, or a file_id that is a Gemini file URI (https:// or gs://)", param=param
    )


def _part(part: Any, param: str) -> Json | None:
    """One OpenAI content part as a Gemini part (None for empty text, which Gemini refuses)."""
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("text", "refusal"):
        text = part.get(kind)
        if not isinstance(text, str):
            raise InvalidRequestError(f"a {kind} part needs a string '{kind}'", param=param)
        return {"text": text} if text else None
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str):
            raise InvalidRequestError("an image_url part needs a url", param=param)
        return media_part(url, param, "image/jpeg")
    if kind == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
            raise InvalidRequestError("an input_audio part needs base64 'data'", param=param)
        return {"inlineData": {"mimeType": f"audio/{audio.get('format') or 'wav'}", "data": audio["data"]}}
    if kind == "file":
        return _file_part(part.get("file"), param)
    raise InvalidRequestError(f"content part type {kind!r} is not supported for Gemini", param=param)


def _parts(content: Any, param: str) -> list[Json]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequestError("content must be a string or an array of parts", param=param)
    return [found for part in content if (found := _part(part, param)) is not None]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _call_args(arguments: Any, param: str) -> Json:
    if isinstance(arguments, dict):
        return arguments
    if arguments in (None, ""):
        return {}
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str) else None
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise InvalidRequestError("tool call arguments must be a JSON object", param=param)
    return parsed


def _call_parts(calls: Any, param: str, names: dict[str, str]) -> list[Json]:
    if not isinstance(calls, list):
        raise InvalidRequestError("tool_calls must be an array", param=param)
    parts: list[Json] = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidRequestError("every tool call needs a function with a name", param=param)
        call_id = call.get("id")
        gemini_call: Json = {"name": function["name"], "args": _call_args(function.get("arguments"), param)}
        if isinstance(call_id, str) and call_id:
            gemini_call["id"] = call_id
            names[call_id] = function["name"]
        part: Json = {"functionCall": gemini_call}
        google = (call.get("extra_content") or {}).get("google")
        signature = google.get("thought_signature") if isinstance(google, dict) else None
        if isinstance(signature, str) and signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def function_response(content: Any) -> Json:
    """A tool result as the object Gemini's functionResponse.response must be."""
    text = _text(content)
    try:
        parsed: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"result": text}
    return parsed if isinstance(parsed, dict) else {"result": parsed}


def _result_part(message: Mapping[str, Any], param: str, names: dict[str, str]) -> Json:
    call_id = message.get("tool_call_id")
    name = names.get(call_id) if isinstance(call_id, str) else None
    name = name or (message.get("name") if isinstance(message.get("name"), str) else None)
    if not name:
        raise InvalidRequestError(
            "a tool message must answer a tool call of an earlier assistant message (tool_call_id)",
            param=param,
        )
    response: Json = {"name": name, "response": function_response(message.get("content"))}
    if isinstance(call_id, str) and call_id:
        response["id"] = call_id
    return {"functionResponse": response}


def contents(messages: Any, model: str) -> tuple[list[Json], list[Json]]:
    """(systemInstruction parts, contents) of the chat messages."""
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError("'messages' must be a non-empty array", param="messages")
    system: list[Json] = []
    turns: list[Json] = []
    names: dict[str, str] = {}  # tool call id -> function name, for the tool results that follow
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        role = message.get("role") if isinstance(message, dict) else None
        if not isinstance(message, dict) or not isinstance(role, str):
            raise InvalidRequestError("every message must be an object with a role", param=param)
        if role in ("system", "developer"):
            system += _parts(message.get("content"), param)
            continue
        if role not in _ROLE_OF:
            raise InvalidRequestError(f"message role {role!r} is not supported for Gemini", param=param)
        if role == "tool":
            parts = [_result_part(message, param, names)]
        else:
            parts = _parts(message.get("content"), param)
        if role == "assistant" and message.get("tool_calls"):
            parts += _call_parts(message["tool_calls"], f"{param}.tool_calls", names)
        if not parts:
            continue
        gemini_role = _ROLE_OF[role]
        if turns and turns[-1]["role"] == gemini_role:
            turns[-1]["parts"] += parts
        else:
            turns.append({"role": gemini_role, "parts": parts})
    if model.startswith("gemini-3"):
        _sign_unsigned_calls(turns)
    return system, turns


def _sign_unsigned_calls(turns: list[Json]) -> None:
    """Gemini 3 refuses a model turn whose first function call lost its thought signature."""
    for turn in turns:
        calls = [part for part in turn["parts"] if "functionCall" in part]
        if turn["role"] == "model" and calls and not any("thoughtSignature" in part for part in calls):
            calls[0]["thoughtSignature"] = SKIPPED_SIGNATURE


def _declaration(tool: Mapping[str, Any], param: str) -> Json:
    function = tool.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequestError("a function tool needs a function with a name", param=param)
    declaration: Json = {"name": function["name"]}
    if isinstance(function.get("description"), str):
        declaration["description"] = function["description"]
    parameters = function.get("parameters")
    if isinstance(parameters, dict) and parameters:
        declaration["parametersJsonSchema"] = cleaned_schema(parameters)
    return declaration


def tools(body: Mapping[str, Any]) -> list[Json]:
    """Gemini tools: one with every function declaration, then Gemini's own (googleSearch, ...)."""
    given = body.get("tools") or []
    if not isinstance(given, list):
        raise InvalidRequestError("'tools' must be an array", param="tools")
    declarations: list[Json] = []
    native: list[Json] = []
    for index, tool in enumerate(given):
        param = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise InvalidRequestError("every tool must be an object", param=param)
        if "type" not in tool:
            native.append(tool)  # a Gemini Tool as it is ({"googleSearch": {}}, {"codeExecution": {}})
        elif tool["type"] == "function":
            declarations.append(_declaration(tool, param))
        else:
            raise InvalidRequestError(f"tool type {tool['type']!r} is not supported for Gemini", param=param)
    if body.get("web_search_options") is not None and not any("googleSearch" in t for t in native):
        native.append({"googleSearch": {}})
    return ([{"functionDeclarations": declarations}] if declarations else []) + native


def tool_config(choice: Any) -> Json | None:
    """OpenAI's tool_choice as Gemini's toolConfig."""
    if choice is None:
        return None
    modes = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
    if isinstance(choice, str) and choice in modes:
        return {"functionCallingConfig": {"mode": modes[choice]}}
    function = (
        choice.get("function") if isinstance(choice, dict) and choice.get("type") == "function" else None
    )
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [function["name"]]}}
    raise InvalidRequestError(
        "tool_choice must be auto, none, required or a named function for Gemini", param="tool_choice"
    )


def thinking_config(effort: Any, model: str) -> Json | None:
    """reasoning_effort as a thinking budget, thoughts included ("none": thinking off where the
    model allows it)."""
    if effort is None:
        return None
    if effort == "none":
        return {"thinkingBudget": LOWEST_PRO_BUDGET if "-pro" in model else 0, "includeThoughts": False}
    if effort not in THINKING_BUDGETS:
        raise InvalidRequestError(
            f"reasoning_effort must be one of none, {', '.join(THINKING_BUDGETS)} for Gemini",
            param="reasoning_effort",
        )
    return {"thinkingBudget": THINKING_BUDGETS[effort], "includeThoughts": True}


def thinking_from_anthropic(thinking: Any) -> Json | None:
    """Anthropic's `thinking` ({"type": "enabled", "budget_tokens": N} or {"type": "disabled"}),
    which the product takes on chat for every provider, as a thinking budget."""
    if not isinstance(thinking, dict):
        return None
    if thinking.get("type") == "disabled":
        return {"thinkingBudget": 0, "includeThoughts": False}
    budget = thinking.get("budget_tokens")
    if thinking.get("type") != "enabled" or isinstance(budget, bool) or not isinstance(budget, int):
        raise InvalidRequestError(
            "thinking must be {type: enabled, budget_tokens: <int>} or {type: disabled}", param="thinking"
        )
    return {"thinkingBudget": budget, "includeThoughts": True}


def _response_format(value: Any) -> Json:
    kind = value.get("type") if isinstance(value, dict) else None
    if value is None or kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        schema = (value.get("json_schema") or {}).get("schema")
        found: Json = {"responseMimeType": "application/json"}
        if isinstance(schema, dict):
            found["responseJsonSchema"] = cleaned_schema(schema)
        return found
    raise InvalidRequestError(
        "response_format type must be text, json_object or json_schema", param="response_format"
    )


def _number(body: Mapping[str, Any], name: str) -> Any:
    value = body.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise InvalidRequestError(f"'{name}' must be a number", param=name)
    return value


def generation_config(body: Mapping[str, Any], model: str) -> Json:
    """generationConfig from OpenAI's sampling parameters; Gemini's own fields win."""
    config: Json = {}
    numbers = {
        "temperature": "temperature", "top_p": "topP", "n": "candidateCount", "seed": "seed",
        "presence_penalty": "presencePenalty", "frequency_penalty": "frequencyPenalty",
        "max_tokens": "maxOutputTokens", "max_completion_tokens": "maxOutputTokens",
    }  # fmt: skip
    for source, target in numbers.items():
        if (value := _number(body, source)) is not None:
            config[target] = value
    stop = body.get("stop")
    if isinstance(stop, str):
        config["stopSequences"] = [stop]
    elif isinstance(stop, list) and stop:
        config["stopSequences"] = [s for s in stop if isinstance(s, str)]
    if body.get("logprobs") is True:
        config["responseLogprobs"] = True
        if (top := _number(body, "top_logprobs")) is not None:
            config["logprobs"] = top
    config.update(_response_format(body.get("response_format")))
    thinking = thinking_config(body.get("reasoning_effort"), model) or thinking_from_anthropic(
        body.get("thinking")
    )
    if thinking is not None:
        config["thinkingConfig"] = thinking
    config.update(native_fields(body, NATIVE_GENERATION_FIELDS))
    for key in ("generationConfig", "generation_config"):
        if isinstance(body.get(key), dict):
            config.update({camel(k): v for k, v in body[key].items()})
    return config


def gemini_request(body: Mapping[str, Any], model: str) -> Json:
    """The GenerateContentRequest for an OpenAI chat completions body sent to `model`."""
    system, turns = contents(body.get("messages"), model)
    request: Json = {"contents": turns}
    if system:
        request["systemInstruction"] = {"parts": system}
    if declared := tools(body):
        request["tools"] = declared
    if (config := tool_config(body.get("tool_choice"))) is not None:
        request["toolConfig"] = config
    if generation := generation_config(body, model):
        request["generationConfig"] = generation
    request.update(native_fields(body, NATIVE_REQUEST_FIELDS))
    return request


_API_VERSION = re.compile(r"v\d+(?:alpha|beta)?\d*")


def model_url(api_base: str, api_version: str, model: str, method: str) -> str:
    """{api_base}/{api_version}/models/{model}:{method}; a base that already ends with an API
    version (…/v1beta) keeps it."""
    base = api_base.rstrip("/")
    if not _API_VERSION.fullmatch(base.rsplit("/", 1)[-1]):
        base = f"{base}/{api_version}"
    return f"{base}/models/{model.removeprefix('models/')}:{method}"
