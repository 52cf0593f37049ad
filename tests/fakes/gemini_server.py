"""A fake Google Gemini upstream speaking the Gemini API's wire format, failure modes picked by model name.

It runs on its own event loop in a background thread (``FakeServerThread``), so tests may use sync
or async clients against the gateway while it answers.

Endpoints (under /v1beta, and the same under /v1, behind ``x-goog-api-key: <api_key>`` or
``?key=<api_key>``):
POST /v1beta/models/{model}:generateContent, POST /v1beta/models/{model}:streamGenerateContent
(``?alt=sse``: SSE ``data:`` lines, one GenerateContentResponse chunk each; without it one JSON array),
POST /v1beta/models/{model}:countTokens, POST /v1beta/models/{model}:embedContent and
POST /v1beta/models/{model}:batchEmbedContents.

What a response holds follows the request:

- text: ``ANSWER_WORDS`` joined, ``finishReason: STOP``; cut to ``generationConfig.maxOutputTokens``
  words (one token a word), ``finishReason: MAX_TOKENS``, when that is fewer.
- ``tools[].functionDeclarations`` given: one ``functionCall`` part (with ``name``, ``args`` filled from
  the declaration's parameters by type, and ``id``) per declaration, unless ``toolConfig`` says mode NONE.
- ``generationConfig.thinkingConfig.includeThoughts``: a ``thought: true`` text part comes first, and
  ``usageMetadata.thoughtsTokenCount`` counts it.
- model ``blocked``: no content, ``finishReason: SAFETY`` with ``safetyRatings`` marking the block.
- ``generationConfig.responseMimeType: application/json``: the text is a JSON object with a value of its
  type for each property of ``responseJsonSchema`` (or ``responseSchema``).
- embeddings: ``outputDimensionality`` values (``EMBEDDING_DIMENSIONS`` by default), deterministic per text,
  with ``usageMetadata.promptTokenCount`` (``count_tokens`` of the texts) as Gemini's current embedding
  models report it; model ``legacy-embedding`` reports no usage, as older ones did.

Request fields are read by their lowerCamel or their proto (snake_case) name, as Google's JSON parser
takes both: the SDK sends ``thinkingConfig.include_thoughts``.

The model in the path picks a failure mode for every endpoint:

- ``fail-429``: 429 ``RESOURCE_EXHAUSTED``.
- ``fail-500``: 500 ``INTERNAL``.
- ``fail-400``: 400 ``INVALID_ARGUMENT``.
- ``fail-400-too-long``: 400 ``INVALID_ARGUMENT``, "The input token count (...) exceeds the maximum number
  of tokens allowed (...)".
- ``flaky-N``: the first N calls with that exact model name are 500 ``INTERNAL``, later ones answer.
- ``drop``: the TCP connection is closed without any response.

A missing key is a 403 ``PERMISSION_DENIED`` and a wrong one a 400 ``INVALID_ARGUMENT`` with reason
``API_KEY_INVALID``, as Google answers them. Every call, failed or not, is recorded in ``calls`` as
(path, model); ``requests`` and ``headers`` hold the body and headers of every authenticated call with
a JSON object body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.openai_server import fake_embedding
from tests.fakes.schema_values import arguments_for

ANSWER_WORDS = ["Hello", " from", " the", " fake", " Gemini"]
THOUGHT_TEXT = "**Thinking it over**\n\nThe user greets me."
THOUGHT_TOKENS = 9
CACHED_TOKENS = 0
EMBEDDING_DIMENSIONS = 768
MODEL_VERSION_SUFFIX = "-001"
FAILURE_MODELS = ("fail-429", "fail-500", "fail-400", "fail-400-too-long", "drop")
LEGACY_EMBEDDING_MODEL = "legacy-embedding"
MAX_INPUT_TOKENS = 1_048_576
_FLAKY = re.compile(r"flaky-(\d+)")
API_VERSIONS = ("v1beta", "v1")

Json = dict[str, Any]

_HARM_CATEGORIES = (
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
)
_METHODS = ("generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents")


def _get(value: Any, name: str) -> Any:
    """A JSON object's field by lowerCamel or proto (snake_case) name: Google's parser takes both."""
    if not isinstance(value, dict):
        return None
    if name in value:
        return value[name]
    return value.get(re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower())


def count_tokens(value: Any) -> int:
    """The fake's deterministic token count of contents: one per four characters of their text parts."""
    return max(1, len(_texts(value)) // 4)


def _texts(value: Any) -> str:
    """Every ``text`` field in a JSON value, joined, in order."""
    if isinstance(value, dict):
        own = value.get("text")
        rest = "".join(_texts(v) for k, v in value.items() if k != "text")
        return (own if isinstance(own, str) else "") + rest
    if isinstance(value, list):
        return "".join(_texts(v) for v in value)
    return ""


def function_args(declaration: Mapping[str, Any]) -> Json:
    """A call's args: each property of the declaration's parameters with a value of its type."""
    return arguments_for(_get(declaration, "parameters") or _get(declaration, "parametersJsonSchema"))


def _declarations(body: Mapping[str, Any]) -> list[Json]:
    """The function declarations of a request's tools, unless toolConfig turns calling off."""
    calling = _get(_get(body, "toolConfig"), "functionCallingConfig")
    if _get(calling, "mode") == "NONE":
        return []
    tools = body.get("tools")
    found: list[Json] = []
    for tool in tools if isinstance(tools, list) else []:
        declared = _get(tool, "functionDeclarations")
        if isinstance(declared, list):
            found.extend(d for d in declared if isinstance(d, dict))
    return found


def _generation_config(body: Mapping[str, Any]) -> Json:
    """The request's generationConfig, or an empty one."""
    config = _get(body, "generationConfig")
    return config if isinstance(config, dict) else {}


def _includes_thoughts(body: Mapping[str, Any]) -> bool:
    """Whether the request asks for thought summaries."""
    return _get(_get(_generation_config(body), "thinkingConfig"), "includeThoughts") is True


def _dimensions(request: Mapping[str, Any]) -> int:
    """The embedding size an embed request asks for."""
    size = _get(request, "outputDimensionality")
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else EMBEDDING_DIMENSIONS


def _json(body: Any) -> web.Response:
    """A 200 JSON response."""
    return web.Response(body=orjson.dumps(body), content_type="application/json")


@dataclass
class FakeGemini:
    """The fake's expected credential and what it has seen."""

    api_key: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    _counter: int = 0
    _flaky_seen: dict[str, int] = field(default_factory=dict)

    def next_id(self) -> str:
        """A response or function-call id the test can look for."""
        self._counter += 1
        return f"fake{self._counter:012d}"

    def attempts(self, model: str) -> int:
        """How many calls, failed or not, named this model."""
        return sum(1 for _, seen in self.calls if seen == model)

    @staticmethod
    def error(status: int, code_name: str, message: str, details: list[Json] | None = None) -> web.Response:
        """A Google API error response."""
        error: Json = {"code": status, "message": message, "status": code_name}
        if details is not None:
            error["details"] = details
        return web.Response(
            status=status, body=orjson.dumps({"error": error}), content_type="application/json"
        )

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """POST /{version}/models/{model}:{method}."""
        model, method = request.match_info["model"], request.match_info["method"]
        raw = await request.read()
        self.calls.append((request.path, model))
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            return self.error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        if key != self.api_key:
            return self.error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }
                ],
            )
        if method not in _METHODS:
            return self.error(404, "NOT_FOUND", f"Method {method} is not found for models/{model}.")
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return self.error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        failure = self._failure(request, model)
        if failure is not None:
            return failure
        if method == "generateContent":
            return _json(self._response(model, body))
        if method == "streamGenerateContent":
            return await self._stream(request, model, body)
        if method == "countTokens":
            return self._count(body)
        if method == "embedContent":
            return _json(self._embedded(model, [body], "embedding"))
        requests = body.get("requests")
        if not isinstance(requests, list) or not all(isinstance(r, dict) for r in requests):
            return self.error(400, "INVALID_ARGUMENT", "* BatchEmbedContentsRequest.requests: required")
        return _json(self._embedded(model, requests, "embeddings"))

    def _failure(self, request: web.Request, model: str) -> web.Response | None:
        """The error the model names, or None to answer; drop closes the connection."""
        if model == "drop":
            if request.transport is not None:
                request.transport.close()
            # aiohttp finds the transport closing when it sends this and gives up quietly.
            return web.Response()
        if model == "fail-429":
            return self.error(
                429,
                "RESOURCE_EXHAUSTED",
                "You exceeded your current quota, please check your plan and billing details.",
                [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}],
            )
        if model == "fail-500":
            return self.error(
                500,
                "INTERNAL",
                "An internal error has occurred. Please retry or report in "
                "https://developers.generativeai.google/guide/troubleshooting",
            )
        if model == "fail-400":
            return self.error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
        if model == "fail-400-too-long":
            return self.error(
                400,
                "INVALID_ARGUMENT",
                f"The input token count ({MAX_INPUT_TOKENS + 1}) exceeds the maximum number of tokens "
                f"allowed ({MAX_INPUT_TOKENS}).",
            )
        if flaky := _FLAKY.fullmatch(model):
            seen = self._flaky_seen.get(model, 0)
            self._flaky_seen[model] = seen + 1
            if seen < int(flaky[1]):
                return self.error(500, "INTERNAL", "An internal error has occurred.")
        return None

    def _parts(self, body: Mapping[str, Any]) -> tuple[list[Json], str]:
        """The candidate's parts and finish reason."""
        parts: list[Json] = []
        if _includes_thoughts(body):
            parts.append({"text": THOUGHT_TEXT, "thought": True})
        declarations = _declarations(body)
        if declarations:
            for declaration in declarations:
                call = {"name": declaration.get("name", ""), "args": function_args(declaration)}
                parts.append({"functionCall": {**call, "id": self.next_id()}})
            return parts, "STOP"
        config = _generation_config(body)
        if _get(config, "responseMimeType") == "application/json":
            schema = _get(config, "responseJsonSchema") or _get(config, "responseSchema")
            parts.append({"text": orjson.dumps(arguments_for(schema)).decode()})
            return parts, "STOP"
        limit = _get(config, "maxOutputTokens")
        words = ANSWER_WORDS
        if isinstance(limit, int) and 0 < limit < len(ANSWER_WORDS):
            words = ANSWER_WORDS[:limit]
        parts.append({"text": "".join(words)})
        return parts, "STOP" if words is ANSWER_WORDS else "MAX_TOKENS"

    def _usage(self, body: Mapping[str, Any], parts: list[Json]) -> Json:
        """usageMetadata for a response with these parts."""
        prompt = count_tokens([body.get("contents"), _get(body, "systemInstruction")])
        answer = [p for p in parts if not p.get("thought")]
        candidates = len(_texts(answer).split()) + sum(1 for p in answer if "functionCall" in p)
        thoughts = THOUGHT_TOKENS if len(answer) < len(parts) else 0
        usage: Json = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": candidates,
            "totalTokenCount": prompt + candidates + thoughts,
            "cachedContentTokenCount": CACHED_TOKENS,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        }
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        return usage

    def _response(self, model: str, body: Mapping[str, Any]) -> Json:
        """A whole GenerateContentResponse."""
        envelope = {"modelVersion": model + MODEL_VERSION_SUFFIX, "responseId": self.next_id()}
        if model == "blocked":
            ratings = [
                {
                    "category": category,
                    "probability": "HIGH" if category == "HARM_CATEGORY_DANGEROUS_CONTENT" else "NEGLIGIBLE",
                    **({"blocked": True} if category == "HARM_CATEGORY_DANGEROUS_CONTENT" else {}),
                }
                for category in _HARM_CATEGORIES
            ]
            usage = self._usage(body, [])
            candidate = {"finishReason": "SAFETY", "index": 0, "safetyRatings": ratings}
            return {"candidates": [candidate], "usageMetadata": usage, **envelope}
        parts, finish = self._parts(body)
        candidate = {"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": 0}
        return {"candidates": [candidate], "usageMetadata": self._usage(body, parts), **envelope}

    def _chunks(self, model: str, body: Mapping[str, Any]) -> list[Json]:
        """The whole response split as Gemini streams it: one chunk per part or word, the last finished."""
        whole = self._response(model, body)
        candidate = whole["candidates"][0]
        if "content" not in candidate:
            return [whole]
        pieces: list[Json] = []
        for part in candidate["content"]["parts"]:
            if "text" in part and not part.get("thought"):
                pieces.extend({**part, "text": text} for text in _split_words(part["text"]))
            else:
                pieces.append(part)
        prompt_only = {k: v for k, v in whole["usageMetadata"].items() if k.startswith("prompt")}
        prompt_only["totalTokenCount"] = prompt_only["promptTokenCount"]
        chunks = []
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            chunk_candidate: Json = {"content": {"parts": [piece], "role": "model"}, "index": 0}
            if last:
                chunk_candidate["finishReason"] = candidate["finishReason"]
            chunks.append(
                {
                    "candidates": [chunk_candidate],
                    "usageMetadata": whole["usageMetadata"] if last else prompt_only,
                    "modelVersion": whole["modelVersion"],
                    "responseId": whole["responseId"],
                }
            )
        return chunks

    async def _stream(self, request: web.Request, model: str, body: Mapping[str, Any]) -> web.StreamResponse:
        """streamGenerateContent: SSE with alt=sse, else the chunks as one JSON array."""
        chunks = self._chunks(model, body)
        if request.query.get("alt") != "sse":
            return _json(chunks)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for chunk in chunks:
                await response.write(b"data: " + orjson.dumps(chunk) + b"\r\n\r\n")
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away mid-stream
        return response

    def _count(self, body: Mapping[str, Any]) -> web.Response:
        """countTokens, of contents or of a whole generateContentRequest."""
        inner = _get(body, "generateContentRequest")
        source = inner if isinstance(inner, dict) else body
        total = count_tokens([source.get("contents"), _get(source, "systemInstruction")])
        return _json(
            {"totalTokens": total, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]}
        )

    @staticmethod
    def _embedding(request: Mapping[str, Any]) -> Json:
        """One ContentEmbedding for an embed request."""
        return {"values": fake_embedding(_texts(request.get("content")), _dimensions(request))}

    def _embedded(self, model: str, requests: list[Json], key: str) -> Json:
        """An embedContent ("embedding") or batchEmbedContents ("embeddings") answer, with usage
        unless the model is the legacy one."""
        embeddings = [self._embedding(r) for r in requests]
        answer: Json = {key: embeddings[0] if key == "embedding" else embeddings}
        if model != LEGACY_EMBEDDING_MODEL:
            tokens = sum(count_tokens(r.get("content")) for r in requests)
            answer["usageMetadata"] = {
                "promptTokenCount": tokens,
                "promptTokenDetails": [{"modality": "TEXT", "tokenCount": tokens}],
            }
        return answer

    def app(self) -> web.Application:
        """The aiohttp app, under /v1beta and /v1."""
        app = web.Application(client_max_size=64 * 1024 * 1024)  # long contexts, inline images
        for version in API_VERSIONS:
            app.router.add_post(f"/{version}/models/{{model:[^/:]+}}:{{method:[A-Za-z]+}}", self.dispatch)
        return app


def _split_words(text: str) -> list[str]:
    """A text in the pieces a stream sends: each word with its leading space."""
    pieces: list[str] = []
    for word in text.split(" "):
        pieces.append(word if not pieces else " " + word)
    return pieces
