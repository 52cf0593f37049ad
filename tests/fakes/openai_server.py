"""A fake OpenAI upstream speaking OpenAI's wire format, with failure modes picked by model name.

It runs on its own event loop in a background thread, so tests may use sync or
async clients against the gateway while it answers.

Endpoints (each with and without the /v1 prefix, all behind ``Authorization: Bearer <api_key>``):
POST /chat/completions, POST /completions (both plain or SSE), POST /embeddings,
POST /moderations, GET /models and GET /models/{id}.

The request's ``model`` picks a failure mode for chat, completions and embeddings:

- ``fail-500`` / ``fail-503``: a server_error with that status.
- ``fail-429``: a rate-limit error (type ``requests``, code ``rate_limit_exceeded``), ``retry-after: 1``.
- ``fail-400-context``: a 400 ``context_length_exceeded``.
- ``fail-400-policy``: a 400 ``content_policy_violation``.
- ``fail-401``: a 401 ``invalid_api_key``.
- ``drop``: the TCP connection is closed without any response.
- ``slow``: the answer comes after ``slow_seconds`` (2 s).
- ``stream-delay``: streamed events come ``stream_interval`` (100 ms) apart.
- ``stream-break``: a stream sends two content events, then the connection is cut (no [DONE], no usage).
- ``flaky-N``: the first N calls with that exact model name are 500s, later ones succeed.
- ``fail-echo-key``: a 400 whose message, code and param (``Bearer <key>``) echo the caller's key.
- ``stream-error-echo-key``: a stream sends one content event, then an error event
  (``data: {"error": ...}``) and an ``event: error`` event, both echoing the caller's key, then [DONE].

A chat model whose name contains ``reasoner`` (DeepSeek's ``deepseek-reasoner``) thinks first:
its message carries ``reasoning_content`` (REASONING_TEXT) beside the content, its stream sends that
text in ``delta.reasoning_content`` chunks before the content, and its usage counts reasoning tokens
(REASONING_USAGE).

Every call, failed or not, is recorded in ``calls`` as (path, model); ``requests`` and
``headers`` hold the body and headers of every authenticated call with a JSON object body.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import re
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

FAKE_USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
REASONING_WORDS = ["The user", " says hi."]
REASONING_TEXT = "".join(REASONING_WORDS)
REASONING_USAGE = {
    "prompt_tokens": 11, "completion_tokens": 27, "total_tokens": 38,
    "completion_tokens_details": {"reasoning_tokens": 20},
}  # fmt: skip
STREAM_WORDS = ["Hello", " from", " the", " fake", " upstream"]
EMBEDDING_DIMENSIONS = 8
MODEL_CREATED = 1_700_000_000
DEFAULT_MODELS = (
    "gpt-4o-mini",
    "gpt-4o",
    "gpt-3.5-turbo-instruct",
    "text-embedding-3-small",
    "omni-moderation-latest",
)
MODERATION_CATEGORIES = (
    "hate",
    "hate/threatening",
    "harassment",
    "harassment/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
FAILURE_MODELS = (
    "fail-500",
    "fail-503",
    "fail-429",
    "fail-400-context",
    "fail-400-policy",
    "fail-401",
    "drop",
    "slow",
    "stream-delay",
    "stream-break",
    "fail-echo-key",
    "stream-error-echo-key",
)

_FLAKY = re.compile(r"flaky-(\d+)")
_KILL = re.compile(r"\bkill\b", re.IGNORECASE)
_SERVER_ERROR = "The server had an error"
_POLICY_MESSAGE = (
    "Your request was rejected as a result of our safety system. "
    "Your prompt may contain text that is not allowed by our safety system."
)

Json = dict[str, Any]


def fake_embedding(item: str | list[int], dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """The fake's unit-length, float32-exact embedding of one input (a string or a token array)."""
    seed = item.encode() if isinstance(item, str) else orjson.dumps(item)
    words = struct.unpack(f"<{dimensions}I", hashlib.shake_256(seed).digest(4 * dimensions))
    values = [word / 0xFFFFFFFF * 2 - 1 for word in words]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    packed = struct.pack(f"<{dimensions}f", *(v / norm for v in values))
    return list(struct.unpack(f"<{dimensions}f", packed))


def _embedding_inputs(raw: Any) -> list[str | list[int]] | None:
    """The inputs of an embeddings request (string, strings, token array or token arrays), or None."""

    def is_tokens(value: Any) -> bool:
        return (
            isinstance(value, list)
            and bool(value)
            and all(isinstance(t, int) and not isinstance(t, bool) for t in value)
        )

    if isinstance(raw, str) and raw:
        return [raw]
    if is_tokens(raw):
        return [list(raw)]
    if isinstance(raw, list) and raw and all((isinstance(v, str) and v) or is_tokens(v) for v in raw):
        return list(raw)
    return None


def _moderation_texts(raw: Any) -> list[str] | None:
    """The texts to moderate: one per string, or one for a multimodal array; None if malformed."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(v, str) for v in raw):
        return list(raw)
    if isinstance(raw, list) and raw and all(isinstance(v, dict) for v in raw):
        return [" ".join(str(part.get("text", "")) for part in raw if part.get("type") == "text")]
    return None


def _moderation_result(text: str) -> Json:
    """One moderation result: flagged for violence when the text contains the word "kill"."""
    flagged = bool(_KILL.search(text))
    categories = {name: flagged and name == "violence" for name in MODERATION_CATEGORIES}
    scores = {name: 0.97 if categories[name] else 0.0001 for name in MODERATION_CATEGORIES}
    return {
        "flagged": flagged,
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": {name: ["text"] for name in MODERATION_CATEGORIES},
    }


def _model_object(model_id: str) -> Json:
    """An OpenAI Model object."""
    return {"id": model_id, "object": "model", "created": MODEL_CREATED, "owned_by": "system"}


def _json(body: Any) -> web.Response:
    """A 200 JSON response."""
    return web.Response(body=orjson.dumps(body), content_type="application/json")


FAKE_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def fake_speech(text: str) -> list[bytes]:
    """Deterministic 'audio' for a text: an ID3 header and 4 KB per word, in chunks."""
    return [b"ID3\x04\x00"] + [word.encode().ljust(4096, b"\x00") for word in text.split() or ["_"]]


@dataclass
class FakeOpenAI:
    """The fake's expected credential and what it has seen."""

    api_key: str
    stored_responses: dict[str, tuple[dict[str, Any], Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    _counter: int = 0
    calls: list[tuple[str, str]] = field(default_factory=list)
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    slow_seconds: float = 2.0
    stream_interval: float = 0.1
    _flaky_seen: dict[str, int] = field(default_factory=dict)

    def next_id(self, prefix: str = "chatcmpl") -> str:
        """A completion id the test can look for in the relayed response."""
        self._counter += 1
        return f"{prefix}-fake-{self._counter}"

    def attempts(self, model: str) -> int:
        """How many calls, failed or not, named this model."""
        return sum(1 for _, seen in self.calls if seen == model)

    def error(
        self,
        status: int,
        message: str,
        error_type: str,
        code: str | None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        """An OpenAI error response."""
        body = {"error": {"message": message, "type": error_type, "code": code, "param": param}}
        return web.Response(
            status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
        )

    async def _admit(self, request: web.Request) -> Json | web.Response:
        """Record the call, check the key and parse the body; the error response if one of those fails."""
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        model = body.get("model") if isinstance(body, dict) else None
        self.calls.append((request.path, model if isinstance(model, str) else ""))
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self.error(401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key")
        if not isinstance(body, dict):
            return self.error(
                400, "We could not parse the JSON body of your request.", "invalid_request_error", None
            )
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        return body

    def _check_key(self, request: web.Request, model: str) -> web.Response | None:
        """Record a body-less call; the 401 response if the key is wrong."""
        self.calls.append((request.path, model))
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self.error(401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key")
        return None

    async def _failure(self, request: web.Request, model: str, noun: str) -> web.StreamResponse | None:
        """Act out the failure mode the model names: the response to send instead, or None to answer."""
        if model == "drop":
            if request.transport is not None:
                request.transport.close()
            # aiohttp finds the transport closing when it sends this and gives up quietly.
            return web.Response()
        if model == "slow":
            await asyncio.sleep(self.slow_seconds)
            return None
        if flaky := _FLAKY.fullmatch(model):
            seen = self._flaky_seen.get(model, 0)
            self._flaky_seen[model] = seen + 1
            return self.error(500, _SERVER_ERROR, "server_error", None) if seen < int(flaky[1]) else None
        if model == "fail-500":
            return self.error(500, _SERVER_ERROR, "server_error", None)
        if model == "fail-503":
            return self.error(
                503, "The engine is currently overloaded, please try again later", "server_error", None
            )
        if model == "fail-429":
            return self.error(
                429,
                f"Rate limit reached for {model} on requests per min (RPM): Limit 3, Used 3, Requested 1. "
                "Please try again in 1s.",
                "requests",
                "rate_limit_exceeded",
                headers={"retry-after": "1"},
            )
        if model == "fail-400-context":
            return self.error(
                400,
                f"This model's maximum context length is 8192 tokens. However, your {noun} resulted in "
                f"10000 tokens. Please reduce the length of the {noun}.",
                "invalid_request_error",
                "context_length_exceeded",
                param=noun,
            )
        if model == "fail-400-policy":
            return self.error(400, _POLICY_MESSAGE, "invalid_request_error", "content_policy_violation")
        if model == "fail-echo-key":
            key = request.headers.get("Authorization", "").removeprefix("Bearer ")
            return self.error(
                400,
                f"Incorrect API key provided: {key}.",
                "invalid_request_error",
                key,
                param=f"Bearer {key}",
            )
        if model == "fail-401":
            return self.error(
                401, "Incorrect API key provided: sk-fake***", "invalid_request_error", "invalid_api_key"
            )
        return None

    async def _stream(
        self, request: web.Request, model: str, events: list[Json], content_events: int
    ) -> web.StreamResponse:
        """Send events as SSE then [DONE]; stream-delay spaces them, stream-break cuts after the content."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            if model == "stream-break":
                for event in events[:content_events]:
                    await response.write(b"data: " + orjson.dumps(event) + b"\n\n")
                if request.transport is not None:
                    request.transport.close()
                return response
            payloads = [b"data: " + orjson.dumps(event) + b"\n\n" for event in events]
            if model == "stream-error-echo-key":
                key = request.headers.get("Authorization", "").removeprefix("Bearer ")
                error = {"message": f"key {key} revoked", "type": "server_error", "code": key, "param": key}
                typed = {"type": "error", "code": key, "message": f"Bearer {key} is not valid", "param": None}
                payloads = [
                    payloads[1],
                    b"data: " + orjson.dumps({"error": error}) + b"\n\n",
                    b"event: error\ndata: " + orjson.dumps(typed) + b"\n\n",
                ]
            for index, payload in enumerate([*payloads, b"data: [DONE]\n\n"]):
                if index and model == "stream-delay":
                    await asyncio.sleep(self.stream_interval)
                await response.write(payload)
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away mid-stream
        return response

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/chat/completions."""
        body = await self._admit(request)
        if isinstance(body, web.Response):
            return body
        model = str(body.get("model", ""))
        failure = await self._failure(request, model, "messages")
        if failure is not None:
            return failure
        completion_id = self.next_id()
        created = int(time.time())
        reasons = "reasoner" in model
        usage = REASONING_USAGE if reasons else FAKE_USAGE
        if not body.get("stream"):
            message: Json = {"role": "assistant", "content": "".join(STREAM_WORDS), "refusal": None}
            if reasons:
                message["reasoning_content"] = REASONING_TEXT
            return _json(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
                    "usage": usage,
                    "system_fingerprint": "fp_fake",
                }
            )

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }

        events = [chunk({"role": "assistant", "content": ""}, None)]
        if reasons:
            events += [chunk({"reasoning_content": word}, None) for word in REASONING_WORDS]
        events += [chunk({"content": word}, None) for word in STREAM_WORDS]
        events.append(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**chunk({}, None), "choices": [], "usage": usage})
        return await self._stream(request, model, events, content_events=3)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/completions (legacy text completions)."""
        body = await self._admit(request)
        if isinstance(body, web.Response):
            return body
        model = str(body.get("model", ""))
        failure = await self._failure(request, model, "prompt")
        if failure is not None:
            return failure
        completion_id = self.next_id("cmpl")
        created = int(time.time())

        def completion(text: str, finish: str | None) -> Json:
            return {
                "id": completion_id,
                "object": "text_completion",
                "created": created,
                "model": body["model"],
                "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
                "system_fingerprint": "fp_fake",
            }

        if not body.get("stream"):
            return _json({**completion("".join(STREAM_WORDS), "stop"), "usage": FAKE_USAGE})
        events = [completion(word, None) for word in STREAM_WORDS]
        events.append(completion("", "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**completion("", None), "choices": [], "usage": FAKE_USAGE})
        return await self._stream(request, model, events, content_events=2)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/embeddings."""
        body = await self._admit(request)
        if isinstance(body, web.Response):
            return body
        model = str(body.get("model", ""))
        failure = await self._failure(request, model, "input")
        if failure is not None:
            return failure
        inputs = _embedding_inputs(body.get("input"))
        if inputs is None:
            return self.error(
                400, "'$.input' is invalid. Please check the API reference.", "invalid_request_error", None
            )
        dimensions = body.get("dimensions", EMBEDDING_DIMENSIONS)
        if not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
            return self.error(400, "Invalid 'dimensions'.", "invalid_request_error", None, param="dimensions")
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            return self.error(
                400,
                "Invalid 'encoding_format': expected 'float' or 'base64'.",
                "invalid_request_error",
                None,
                param="encoding_format",
            )
        data: list[Json] = []
        for index, item in enumerate(inputs):
            vector = fake_embedding(item, dimensions)
            encoded: list[float] | str = vector
            if encoding == "base64":
                encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(len(item) if isinstance(item, list) else max(1, len(item.split())) for item in inputs)
        return _json(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def moderations(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/moderations."""
        body = await self._admit(request)
        if isinstance(body, web.Response):
            return body
        texts = _moderation_texts(body.get("input"))
        if texts is None:
            return self.error(
                400, "'$.input' is invalid. Please check the API reference.", "invalid_request_error", None
            )
        return _json(
            {
                "id": self.next_id("modr"),
                "model": body.get("model") or "omni-moderation-latest",
                "results": [_moderation_result(text) for text in texts],
            }
        )

    async def images(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/images/generations: one tiny PNG per image (b64_json or a URL)."""
        body = await self._admit(request)
        if isinstance(body, web.Response):
            return body
        count = int(body.get("n") or 1)
        if body.get("response_format") == "b64_json":
            data = [{"b64_json": base64.b64encode(FAKE_PNG).decode()} for _ in range(count)]
        else:
            data = [{"url": f"https://images.invalid/{self.next_id('img')}.png"} for _ in range(count)]
        answer: dict[str, Any] = {"created": int(time.time()), "data": data}
        if str(body.get("model", "")).startswith("gpt-image"):
            answer["usage"] = {
                "input_tokens": 12, "output_tokens": 1056, "total_tokens": 1068,
                "input_tokens_details": {"text_tokens": 12, "image_tokens": 0},
            }  # fmt: skip
        return _json(answer)

    async def _admit_form(self, request: web.Request) -> dict[str, Any] | web.Response:
        """Like _admit, for multipart/form-data: files become (filename, size) pairs."""
        form = await request.post()
        fields: dict[str, Any] = {}
        for name, value in form.items():
            fields[name] = (
                (value.filename, len(value.file.read())) if isinstance(value, web.FileField) else value
            )
        self.calls.append((request.path, str(fields.get("model", ""))))
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self.error(401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key")
        self.requests.append(fields)
        return fields

    async def image_upload(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/images/edits and /v1/images/variations (multipart): one URL per image."""
        fields = await self._admit_form(request)
        if isinstance(fields, web.Response):
            return fields
        count = int(fields.get("n") or 1)
        data = [{"url": f"https://images.invalid/{self.next_id('img')}.png"} for _ in range(count)]
        return _json({"created": int(time.time()), "data": data})

    async def transcription(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/audio/transcriptions and /translations (multipart), in every response_format."""
        fields = await self._admit_form(request)
        if isinstance(fields, web.Response):
            return fields
        if "file" not in fields:
            return self.error(400, "you must provide a file", "invalid_request_error", None, param="file")
        filename, size = fields["file"]
        text = f"transcript of {filename} ({size} bytes)"
        fmt = fields.get("response_format", "json")
        if fmt == "text":
            return web.Response(text=text + "\n", content_type="text/plain")
        if fmt in ("srt", "vtt"):
            cue = "00:00:00,000 --> 00:00:01,000" if fmt == "srt" else "00:00:00.000 --> 00:00:01.000"
            head = "1\n" if fmt == "srt" else "WEBVTT\n\n"
            return web.Response(text=f"{head}{cue}\n{text}\n", content_type="text/plain")
        answer: dict[str, Any] = {"text": text}
        if fmt == "verbose_json":
            answer |= {"task": "transcribe", "language": "english", "duration": 1.0, "segments": []}
        if str(fields.get("model", "")).startswith("gpt-4o"):
            answer["usage"] = {"type": "tokens", "input_tokens": 20, "output_tokens": 8, "total_tokens": 28}
        return _json(answer)

    async def create_response(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/responses (native, stored): plain or as a stream of events."""
        body = await self._admit(request)
        if isinstance(body, web.Response):
            return body
        response_id = self.next_id("resp")
        text = "".join(STREAM_WORDS)
        usage = {
            "input_tokens": 11, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": 7,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 18,
        }  # fmt: skip
        item = {
            "type": "message", "id": "msg_" + response_id, "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
        }  # fmt: skip
        stored: dict[str, Any] = {
            "id": response_id, "object": "response", "created_at": int(time.time()), "status": "completed",
            "model": body["model"], "output": [item], "usage": usage, "error": None,
            "incomplete_details": None,
            "instructions": None, "metadata": {}, "parallel_tool_calls": True, "temperature": 1.0,
            "tool_choice": "auto", "tools": [], "top_p": 1.0,
        }  # fmt: skip
        self.stored_responses[response_id] = (stored, body.get("input"))
        if not body.get("stream"):
            return _json(stored)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "response.created",
                {"response": {**stored, "status": "in_progress", "output": [], "usage": None}},
            ),
            (
                "response.output_text.delta",
                {"item_id": item["id"], "output_index": 0, "content_index": 0, "delta": text},
            ),
            ("response.completed", {"response": stored}),
        ]
        for sequence, (kind, fields) in enumerate(events):
            payload = {"type": kind, "sequence_number": sequence, **fields}
            await response.write(f"event: {kind}\n".encode() + b"data: " + orjson.dumps(payload) + b"\n\n")
        await response.write_eof()
        return response

    async def stored_response(self, request: web.Request) -> web.StreamResponse:
        """GET/DELETE /v1/responses/{id} and GET .../input_items."""
        response_id = request.match_info["response_id"]
        denied = self._check_key(request, response_id)
        if denied is not None:
            return denied
        if response_id not in self.stored_responses:
            return self.error(
                404, f"No response found with id '{response_id}'.", "invalid_request_error", None
            )
        stored, given = self.stored_responses[response_id]
        if request.method == "DELETE":
            del self.stored_responses[response_id]
            return _json({"id": response_id, "object": "response", "deleted": True})
        if request.path.endswith("/input_items"):
            text = given if isinstance(given, str) else orjson.dumps(given).decode()
            items = [
                {
                    "type": "message",
                    "id": "in_1",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                }
            ]
            return _json(
                {"object": "list", "data": items, "first_id": "in_1", "last_id": "in_1", "has_more": False}
            )
        return _json(stored)

    async def speech(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/audio/speech: audio bytes, sent in several chunks."""
        body = await self._admit(request)
        if isinstance(body, web.Response):
            return body
        media = {"mp3": "audio/mpeg", "wav": "audio/wav", "opus": "audio/ogg", "flac": "audio/flac"}
        response = web.StreamResponse(
            headers={"Content-Type": media.get(body.get("response_format", "mp3"), "audio/mpeg")}
        )
        await response.prepare(request)
        for chunk in fake_speech(str(body.get("input", ""))):
            await response.write(chunk)
        await response.write_eof()
        return response

    async def list_models(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/models."""
        denied = self._check_key(request, "")
        if denied is not None:
            return denied
        return _json({"object": "list", "data": [_model_object(m) for m in self.models]})

    async def retrieve_model(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/models/{id}."""
        model_id = request.match_info["model_id"]
        denied = self._check_key(request, model_id)
        if denied is not None:
            return denied
        if model_id not in self.models:
            return self.error(
                404,
                f"The model '{model_id}' does not exist",
                "invalid_request_error",
                "model_not_found",
                param="model",
            )
        return _json(_model_object(model_id))

    def app(self) -> web.Application:
        """The aiohttp app, with and without the /v1 prefix."""
        app = web.Application(client_max_size=64 * 1024 * 1024)  # long contexts, base64 images
        for prefix in ("/v1", ""):
            app.router.add_post(f"{prefix}/chat/completions", self.chat)
            app.router.add_post(f"{prefix}/completions", self.completions)
            app.router.add_post(f"{prefix}/embeddings", self.embeddings)
            app.router.add_post(f"{prefix}/moderations", self.moderations)
            app.router.add_post(f"{prefix}/images/generations", self.images)
            app.router.add_post(f"{prefix}/audio/speech", self.speech)
            app.router.add_post(f"{prefix}/responses", self.create_response)
            app.router.add_get(f"{prefix}/responses/{{response_id}}", self.stored_response)
            app.router.add_delete(f"{prefix}/responses/{{response_id}}", self.stored_response)
            app.router.add_get(f"{prefix}/responses/{{response_id}}/input_items", self.stored_response)
            app.router.add_post(f"{prefix}/images/edits", self.image_upload)
            app.router.add_post(f"{prefix}/images/variations", self.image_upload)
            app.router.add_post(f"{prefix}/audio/transcriptions", self.transcription)
            app.router.add_post(f"{prefix}/audio/translations", self.transcription)
            app.router.add_get(f"{prefix}/models", self.list_models)
            app.router.add_get(f"{prefix}/models/{{model_id:.+}}", self.retrieve_model)
        return app


class FakeServerThread:
    """Runs an aiohttp app on 127.0.0.1 in a daemon thread with its own loop."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(app)
        self.port = 0
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = int(self._runner.addresses[0][1])
        self._started.set()
        self._loop.run_forever()

    def start(self) -> str:
        """Start serving; returns the base URL."""
        self._thread.start()
        self._started.wait(10)
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop the server and its loop."""
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
