"""A fake Anthropic upstream speaking the Messages API's wire format, with failure modes picked by model name.

It runs on its own event loop in a background thread (``FakeServerThread``), so tests may use sync
or async clients against the gateway while it answers.

Endpoints (each with and without the /v1 prefix, behind ``x-api-key: <api_key>`` as the API reference
has it, or ``Authorization: Bearer <api_key>`` as the current SDK sends an API key, and an
``anthropic-version`` header):
POST /v1/messages (a ``message`` object, or SSE with ``"stream": true``) and
POST /v1/messages/count_tokens (``{"input_tokens": N}``, the same count a message's usage reports).

What a message holds follows the request:

- text: ``ANSWER_WORDS`` joined, ``stop_reason: end_turn``.
- ``tools`` given and the model ``tool-use`` or ``parallel-tools``, or ``tool_choice`` of type ``any`` or
  ``tool``: ``tool_use`` blocks (two for ``parallel-tools``, else one), ``stop_reason: tool_use``; the
  input fills each property of the tool's ``input_schema`` with a value of its type.
- ``thinking`` of type ``enabled`` or ``adaptive``: a ``thinking`` block with ``signature`` comes first.
- ``output_config.format`` of type ``json_schema`` (structured outputs): the text is JSON filling each
  property of the schema with a value of its type.

The request's ``model`` picks a failure mode for /v1/messages:

- ``fail-529``: 529 ``overloaded_error``.
- ``fail-429``: 429 ``rate_limit_error`` with ``retry-after: 1``.
- ``fail-400-too-long``: 400 ``invalid_request_error`` "prompt is too long: ...".
- ``fail-500``: 500 ``api_error``.
- ``stream-error``: a stream sends its text deltas, then ``event: error`` with an ``overloaded_error``
  and ends (no content_block_stop, message_delta or message_stop); without stream it answers normally.
- ``drop``: the TCP connection is closed without any response.
- ``slow``: the answer comes after ``slow_seconds`` (2 s).

Every call, failed or not, is recorded in ``calls`` as (path, model); ``requests`` and ``headers``
hold the body and headers of every authenticated call with a JSON object body.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.schema_values import arguments_for

ANSWER_WORDS = ["Hello", " from", " the", " fake", " Claude"]
THINKING_WORDS = ["Let me", " think", " about", " this."]
OUTPUT_TOKENS = 12
TOOL_JSON_PIECE = 7  # characters of tool input per input_json_delta
FAILURE_MODELS = ("fail-529", "fail-429", "fail-400-too-long", "fail-500", "stream-error", "drop", "slow")
TOOL_MODELS = ("tool-use", "parallel-tools")
ANTHROPIC_VERSION_HEADER = "anthropic-version"

Json = dict[str, Any]


def count_input_tokens(body: Mapping[str, Any]) -> int:
    """The fake's deterministic input token count: one per four characters of system, messages and tools."""
    counted = {key: body.get(key) for key in ("system", "messages", "tools") if body.get(key) is not None}
    return max(1, len(orjson.dumps(counted, option=orjson.OPT_SORT_KEYS)) // 4)


def tool_input(tool: Mapping[str, Any]) -> Json:
    """A tool call's input: each property of the tool's input_schema with a value of its JSON type."""
    return arguments_for(tool.get("input_schema"))


def _wants_tools(body: Mapping[str, Any], model: str) -> bool:
    """Whether the answer is tool_use: tools are given and the model or tool_choice asks for a call."""
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools:
        return False
    choice = body.get("tool_choice")
    choice_type = choice.get("type") if isinstance(choice, dict) else None
    if choice_type == "none":
        return False
    return model in TOOL_MODELS or choice_type in ("any", "tool")


def _wants_thinking(body: Mapping[str, Any]) -> bool:
    """Whether extended thinking is on."""
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def _output_schema(body: Mapping[str, Any]) -> Any:
    """The JSON schema structured outputs asks the text to follow, or None."""
    config = body.get("output_config")
    output_format = config.get("format") if isinstance(config, dict) else None
    if isinstance(output_format, dict) and output_format.get("type") == "json_schema":
        return output_format.get("schema")
    return None


def _signature(text: str) -> str:
    """A stable, opaque-looking signature for a thinking block."""
    return "Ev" + hashlib.sha256(text.encode()).hexdigest()


def _presented_key(request: web.Request) -> str | None:
    """The API key the caller sent: x-api-key first, else a Bearer token."""
    if key := request.headers.get("x-api-key"):
        return key
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" else None


def _sse(event: str, data: Json) -> bytes:
    """One SSE event with Anthropic's event name line."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@dataclass
class FakeAnthropic:
    """The fake's expected credential and what it has seen."""

    api_key: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    slow_seconds: float = 2.0
    _counter: int = 0

    def next_id(self, prefix: str) -> str:
        """An id with Anthropic's prefix (msg, toolu, req) the test can look for."""
        self._counter += 1
        return f"{prefix}_fake{self._counter:020d}"

    def attempts(self, model: str) -> int:
        """How many calls, failed or not, named this model."""
        return sum(1 for _, seen in self.calls if seen == model)

    def error(
        self, status: int, error_type: str, message: str, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        """An Anthropic error response, with its request-id header and body field."""
        request_id = self.next_id("req")
        body = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}
        return web.Response(
            status=status,
            body=orjson.dumps(body),
            content_type="application/json",
            headers={"request-id": request_id, **(headers or {})},
        )

    async def _admit(self, request: web.Request, required: tuple[str, ...]) -> Json | web.Response:
        """Record the call, check key, version header and body; the error response if one fails."""
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        model = body.get("model") if isinstance(body, dict) else None
        self.calls.append((request.path, model if isinstance(model, str) else ""))
        if _presented_key(request) != self.api_key:
            return self.error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get(ANTHROPIC_VERSION_HEADER):
            return self.error(400, "invalid_request_error", "anthropic-version: header is required")
        if not isinstance(body, dict):
            return self.error(400, "invalid_request_error", "The request body is not valid JSON.")
        for name in required:
            if name not in body:
                return self.error(400, "invalid_request_error", f"{name}: Field required")
        if "max_tokens" in required and (
            not isinstance(body["max_tokens"], int) or isinstance(body["max_tokens"], bool)
        ):
            return self.error(400, "invalid_request_error", "max_tokens: Input should be a valid integer")
        if not isinstance(body["messages"], list) or not body["messages"]:
            return self.error(400, "invalid_request_error", "messages: at least one message is required")
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        return body

    async def _failure(self, request: web.Request, model: str) -> web.StreamResponse | None:
        """Act out the failure mode the model names: the response to send instead, or None to answer."""
        if model == "drop":
            if request.transport is not None:
                request.transport.close()
            # aiohttp finds the transport closing when it sends this and gives up quietly.
            return web.Response()
        if model == "slow":
            await asyncio.sleep(self.slow_seconds)
            return None
        if model == "fail-529":
            return self.error(529, "overloaded_error", "Overloaded")
        if model == "fail-429":
            return self.error(
                429,
                "rate_limit_error",
                "This request would exceed the rate limit for your organization of 50 requests per minute.",
                headers={"retry-after": "1"},
            )
        if model == "fail-400-too-long":
            return self.error(
                400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"
            )
        if model == "fail-500":
            return self.error(500, "api_error", "Internal server error")
        return None

    def _content(self, body: Mapping[str, Any], model: str) -> list[Json]:
        """The message's content blocks, complete."""
        blocks: list[Json] = []
        if _wants_thinking(body):
            thinking = "".join(THINKING_WORDS)
            blocks.append({"type": "thinking", "thinking": thinking, "signature": _signature(thinking)})
        if _wants_tools(body, model):
            tools = [t for t in body["tools"] if isinstance(t, dict)]
            choice = body.get("tool_choice")
            if isinstance(choice, dict) and choice.get("type") == "tool":
                tools = [t for t in tools if t.get("name") == choice.get("name")] or tools
            chosen = tools[:2] if model == "parallel-tools" else tools[:1]
            if model == "parallel-tools" and len(chosen) == 1:
                chosen = chosen * 2
            for tool in chosen:
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": self.next_id("toolu"),
                        "name": tool.get("name", ""),
                        "input": tool_input(tool),
                    }
                )
        elif (schema := _output_schema(body)) is not None:
            blocks.append({"type": "text", "text": orjson.dumps(arguments_for(schema)).decode()})
        else:
            blocks.append({"type": "text", "text": "".join(ANSWER_WORDS)})
        return blocks

    async def messages(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/messages."""
        body = await self._admit(request, ("model", "max_tokens", "messages"))
        if isinstance(body, web.Response):
            return body
        model = str(body["model"])
        failure = await self._failure(request, model)
        if failure is not None:
            return failure
        content = self._content(body, model)
        stop_reason = "tool_use" if content[-1]["type"] == "tool_use" else "end_turn"
        message: Json = {
            "id": self.next_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": count_input_tokens(body),
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": OUTPUT_TOKENS,
            },
        }
        if not body.get("stream"):
            return web.Response(
                body=orjson.dumps(message),
                content_type="application/json",
                headers={"request-id": self.next_id("req")},
            )
        return await self._stream(request, model, message)

    async def _stream(self, request: web.Request, model: str, message: Json) -> web.StreamResponse:
        """Send the message as Anthropic's event sequence; stream-error breaks off with an error event."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {**message["usage"], "output_tokens": 1},
        }
        try:
            await response.write(_sse("message_start", {"type": "message_start", "message": start}))
            for index, block in enumerate(message["content"]):
                await response.write(
                    _sse(
                        "content_block_start",
                        {"type": "content_block_start", "index": index, "content_block": _opening(block)},
                    )
                )
                if index == 0:
                    await response.write(_sse("ping", {"type": "ping"}))
                for delta in _deltas(block):
                    await response.write(
                        _sse(
                            "content_block_delta",
                            {"type": "content_block_delta", "index": index, "delta": delta},
                        )
                    )
                if model == "stream-error":
                    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
                    await response.write(_sse("error", error))
                    await response.write_eof()
                    return response
                await response.write(
                    _sse("content_block_stop", {"type": "content_block_stop", "index": index})
                )
            await response.write(
                _sse(
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                        "usage": {"output_tokens": message["usage"]["output_tokens"]},
                    },
                )
            )
            await response.write(_sse("message_stop", {"type": "message_stop"}))
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away mid-stream
        return response

    async def count_tokens(self, request: web.Request) -> web.Response:
        """POST /v1/messages/count_tokens."""
        body = await self._admit(request, ("model", "messages"))
        if isinstance(body, web.Response):
            return body
        return web.Response(
            body=orjson.dumps({"input_tokens": count_input_tokens(body)}), content_type="application/json"
        )

    def app(self) -> web.Application:
        """The aiohttp app, with and without the /v1 prefix."""
        app = web.Application(client_max_size=64 * 1024 * 1024)  # long contexts, base64 images
        for prefix in ("/v1", ""):
            app.router.add_post(f"{prefix}/messages", self.messages)
            app.router.add_post(f"{prefix}/messages/count_tokens", self.count_tokens)
        return app


def _opening(block: Json) -> Json:
    """A block as content_block_start carries it: empty, to be filled by deltas."""
    if block["type"] == "text":
        return {"type": "text", "text": ""}
    if block["type"] == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    return {**block, "input": {}}


def _deltas(block: Json) -> list[Json]:
    """The content_block_delta payloads that build a block."""
    if block["type"] == "text":
        words = ANSWER_WORDS if block["text"] == "".join(ANSWER_WORDS) else [block["text"]]
        return [{"type": "text_delta", "text": word} for word in words]
    if block["type"] == "thinking":
        return [
            *({"type": "thinking_delta", "thinking": word} for word in THINKING_WORDS),
            {"type": "signature_delta", "signature": block["signature"]},
        ]
    encoded = orjson.dumps(block["input"]).decode()
    pieces = [encoded[i : i + TOOL_JSON_PIECE] for i in range(0, len(encoded), TOOL_JSON_PIECE)]
    # Anthropic opens each tool input with an empty partial_json.
    return [{"type": "input_json_delta", "partial_json": piece} for piece in ["", *pieces]]
