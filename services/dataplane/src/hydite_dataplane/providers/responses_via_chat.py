"""The Responses API on top of chat completions, for providers without a native Responses API.

Pure translation, no I/O: a Responses request becomes a chat request; a chat completion (or its
stream of chunks) becomes a Response object (or Responses stream events).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from hydite_common.errors import InvalidRequestError
from hydite_common.openai_params import CHAT_PARAMS, RESPONSES_PARAMS
from hydite_dataplane.providers.base import OperationAdapter
from hydite_dataplane.providers.via_chat import ChatChunkEvents, ChatFront, ViaChat

_PART_TO_CHAT = {"input_text": "text", "output_text": "text", "text": "text"}


def _chat_content(content: Any) -> Any:
    """Responses content parts -> chat content parts (a plain string stays a string)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequestError("message content must be a string or an array of parts", param="input")
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in _PART_TO_CHAT:
            parts.append({"type": "text", "text": part.get("text", "")})
        elif kind == "input_image":
            url = part.get("image_url") or part.get("file_id")
            parts.append(
                {"type": "image_url", "image_url": {"url": url, "detail": part.get("detail", "auto")}}
            )
        else:
            raise InvalidRequestError(f"content part type {kind!r} is not supported here", param="input")
    return parts


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if isinstance(body.get("instructions"), str):
        messages.append({"role": "system", "content": body["instructions"]})
    source = body.get("input")
    if isinstance(source, str):
        return [*messages, {"role": "user", "content": source}]
    if not isinstance(source, list):
        raise InvalidRequestError("'input' must be a string or an array of items", param="input")
    for item in source:
        if not isinstance(item, dict):
            raise InvalidRequestError("every input item must be an object", param="input")
        kind = item.get("type", "message")
        if kind == "message":
            role = "system" if item.get("role") == "developer" else item.get("role", "user")
            messages.append({"role": role, "content": _chat_content(item.get("content", ""))})
        elif kind == "function_call":
            call = {
                "id": item.get("call_id"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments", "")},
            }
            if messages and messages[-1]["role"] == "assistant" and "tool_calls" in messages[-1]:
                messages[-1]["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else orjson.dumps(output).decode()
            messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": text})
        else:
            raise InvalidRequestError(f"input item type {kind!r} is not supported here", param="input")
    return messages


def _tools(tools: Any) -> list[dict[str, Any]]:
    chat_tools: list[dict[str, Any]] = []
    for tool in tools or []:
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else tool
            raise InvalidRequestError(
                f"tool type {kind!r} needs a provider with a native Responses API", param="tools"
            )
        function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
        chat_tools.append({"type": "function", "function": function})
    return chat_tools


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


def _response_format(text: Any) -> dict[str, Any] | None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if fmt["type"] == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidRequestError(f"text.format type {fmt['type']!r} is not supported", param="text.format")


def to_chat_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    """A Responses request as a chat completions request for `model`."""
    if body.get("previous_response_id"):
        raise InvalidRequestError(
            "previous_response_id needs stored responses; send the conversation in 'input'",
            param="previous_response_id",
        )
    chat: dict[str, Any] = {"model": model, "messages": _messages(body)}
    renames = {
        "max_output_tokens": "max_completion_tokens",
        "temperature": "temperature",
        "top_p": "top_p",
        "parallel_tool_calls": "parallel_tool_calls",
        "user": "user",
        "metadata": "metadata",
    }
    for source, target in renames.items():
        if body.get(source) is not None:
            chat[target] = body[source]
    if tools := _tools(body.get("tools")):
        chat["tools"] = tools
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    if (response_format := _response_format(body.get("text"))) is not None:
        chat["response_format"] = response_format
    effort = body.get("reasoning", {}).get("effort") if isinstance(body.get("reasoning"), dict) else None
    if effort is not None:
        chat["reasoning_effort"] = effort
    if body.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def responses_usage(chat_usage: Any) -> dict[str, Any] | None:
    """Chat usage in the Responses shape."""
    if not isinstance(chat_usage, dict):
        return None
    prompt = int(chat_usage.get("prompt_tokens") or 0)
    completion = int(chat_usage.get("completion_tokens") or 0)
    cached = int((chat_usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    reasoning = int((chat_usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + completion,
    }


def _envelope(body: dict[str, Any], response_id: str, created: int, status: str) -> dict[str, Any]:
    """The Response fields that echo the request."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body.get("model"),
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "temperature": body.get("temperature", 1.0),
        "top_p": body.get("top_p", 1.0),
        "tool_choice": body.get("tool_choice", "auto"),
        # Tools run through chat completions without strict mode unless the request asked for it.
        "tools": [
            {**t, "strict": t.get("strict", False)} for t in body.get("tools") or [] if isinstance(t, dict)
        ],
        "text": body.get("text", {"format": {"type": "text"}}),
        "metadata": body.get("metadata") or {},
        "store": False,
    }


def _message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = (
        [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
        if status == "completed"
        else []
    )
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def _function_item(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    return {
        "type": "function_call",
        "id": f"fc_{call.get('id', '')}",
        "call_id": call.get("id", ""),
        "name": function.get("name", ""),
        "arguments": function.get("arguments", ""),
        "status": "completed",
    }


def from_chat_response(body: dict[str, Any], completion: dict[str, Any]) -> dict[str, Any]:
    """A chat.completion as the Response object of the original Responses request."""
    chat_id = str(completion.get("id", "")).removeprefix("chatcmpl-")
    response = _envelope(body, f"resp_{chat_id}", int(completion.get("created") or time.time()), "completed")
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    if message.get("content"):
        output.append(_message_item(f"msg_{chat_id}", message["content"]))
    output += [_function_item(call) for call in message.get("tool_calls") or []]
    response["output"] = output
    if choice.get("finish_reason") == "length":
        response["status"] = "incomplete"
        response["incomplete_details"] = {"reason": "max_output_tokens"}
    if (usage := responses_usage(completion.get("usage"))) is not None:
        response["usage"] = usage
    return response


def _event(kind: str, sequence: int, **fields: Any) -> bytes:
    payload = {"type": kind, "sequence_number": sequence, **fields}
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class ChatToResponsesStream:
    """Turns chat completion chunks into Responses stream events, one request at a time."""

    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body
        self._sequence = 0
        self._started = False
        self._text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self._usage: Any = None
        self._finish: str | None = None
        self._response: dict[str, Any] = {}
        self._message_id = ""

    def _next(self, kind: str, **fields: Any) -> bytes:
        event = _event(kind, self._sequence, **fields)
        self._sequence += 1
        return event

    def _start(self, chunk: dict[str, Any]) -> list[bytes]:
        chat_id = str(chunk.get("id", "")).removeprefix("chatcmpl-")
        self._message_id = f"msg_{chat_id}"
        self._response = _envelope(
            self._body, f"resp_{chat_id}", int(chunk.get("created") or time.time()), "in_progress"
        )
        self._started = True
        return [
            self._next("response.created", response=self._response),
            self._next("response.in_progress", response=self._response),
        ]

    def _open_message(self) -> list[bytes]:
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        return [
            self._next(
                "response.output_item.added",
                output_index=0,
                item=_message_item(self._message_id, "", "in_progress"),
            ),
            self._next(
                "response.content_part.added",
                item_id=self._message_id,
                output_index=0,
                content_index=0,
                part=part,
            ),
        ]

    def feed(self, data: dict[str, Any]) -> list[bytes]:
        """Events for one chat chunk (already parsed from its `data:` line)."""
        events = [] if self._started else self._start(data)
        if isinstance(data.get("usage"), dict):
            self._usage = data["usage"]
        for choice in data.get("choices") or []:
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                if not self._text:
                    events += self._open_message()
                self._text.append(text)
                events.append(
                    self._next(
                        "response.output_text.delta",
                        item_id=self._message_id,
                        output_index=0,
                        content_index=0,
                        delta=text,
                        logprobs=[],
                    )
                )
            for call in delta.get("tool_calls") or []:
                slot = self._calls.setdefault(
                    int(call.get("index", 0)), {"id": "", "function": {"name": "", "arguments": ""}}
                )
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["function"]["name"] += function.get("name") or ""
                slot["function"]["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return events

    def finish(self) -> list[bytes]:
        """The closing events once the chat stream ended ([DONE])."""
        if not self._started:
            return []
        events: list[bytes] = []
        output: list[dict[str, Any]] = []
        if self._text:
            text = "".join(self._text)
            item = _message_item(self._message_id, text)
            ids = {"item_id": self._message_id, "output_index": 0, "content_index": 0}
            events += [
                self._next("response.output_text.done", **ids, text=text, logprobs=[]),
                self._next("response.content_part.done", **ids, part=item["content"][0]),
                self._next("response.output_item.done", output_index=0, item=item),
            ]
            output.append(item)
        for _, call in sorted(self._calls.items()):
            item = _function_item(call)
            index = len(output)
            events += [
                self._next(
                    "response.output_item.added", output_index=index, item={**item, "status": "in_progress"}
                ),
                self._next("response.output_item.done", output_index=index, item=item),
            ]
            output.append(item)
        completed = {**self._response, "status": "completed", "output": output}
        if (usage := responses_usage(self._usage)) is not None:
            completed["usage"] = usage
        if self._finish == "length":
            completed["status"] = "incomplete"
            completed["incomplete_details"] = {"reason": "max_output_tokens"}
        kind = "response.completed" if completed["status"] == "completed" else "response.incomplete"
        events.append(self._next(kind, response=completed))
        return events


def chat_to_responses_translator(body: dict[str, Any]) -> ChatChunkEvents:
    """A StreamTranslator from chat SSE events to Responses SSE events."""
    return ChatChunkEvents(ChatToResponsesStream(body))


RESPONSES_FRONT = ChatFront(
    supported_params=RESPONSES_PARAMS
    & (CHAT_PARAMS | {"input", "instructions", "max_output_tokens", "text"}),
    to_chat=to_chat_request,
    from_chat=from_chat_response,
    stream=chat_to_responses_translator,
)
"""The Responses API over chat completions."""


def responses_via_chat(chat: OperationAdapter) -> ViaChat:
    """The `responses` operation for a provider that only speaks chat completions."""
    return ViaChat(RESPONSES_FRONT, chat)
