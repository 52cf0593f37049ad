"""A fake Azure OpenAI / Azure AI Foundry upstream with a fake Entra ID token endpoint.

Inference endpoints (OpenAI's wire format, as Azure answers it, with `prompt_filter_results` and
`content_filter_results`):

- POST /openai/deployments/{deployment}/chat/completions and .../embeddings, which require the
  `api-version` query parameter;
- POST /openai/v1/chat/completions (no api-version; the deployment is the body's `model`);
- POST /openai/v1/responses (stored: GET and DELETE /openai/v1/responses/{id} reach it again);
- POST /models/chat/completions and /models/embeddings (Foundry model inference, api-version required,
  the model in the body).

Every inference call needs `api-key: <api_key>`, `Authorization: Bearer <api_key>` or
`Authorization: Bearer <a token this fake issued>`, else 401 as Azure answers it. The deployment (or
model) `filtered` answers Azure's content-filter 400 (`code: content_filter`, `innererror`
ResponsibleAIPolicyViolation with `content_filter_result`).

Chat answers `ANSWER_WORDS` with `USAGE`; a stream sends Azure's prompt-filter chunk (no choices),
one delta per word, the finish chunk, the usage chunk when `stream_options.include_usage`, then
[DONE]. Embeddings answer `fake_embedding` vectors with `prompt_tokens` = number of inputs * 3.

Token endpoint: POST /{tenant}/oauth2/v2.0/token with the client-credentials form of `client_id` /
`client_secret`; `token_requests` counts them. Tenant `failing` answers 500, a wrong secret 401
`invalid_client`.

`calls` records (path, query api-version or "", auth header name) of every inference call.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.openai_server import fake_embedding

ANSWER_WORDS = ["Hello", " from", " fake", " Azure"]
USAGE = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
EMBEDDING_TOKENS_PER_INPUT = 3
FILTERED = "filtered"
FAILING_TENANT = "failing"
CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-entra-client-secret-0123"
_SAFE = {"filtered": False, "severity": "safe"}
PROMPT_FILTER_RESULTS = [
    {
        "prompt_index": 0,
        "content_filter_results": {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE},
    }
]
FILTER_MESSAGE = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
    "Please modify your prompt and retry."
)

Json = dict[str, Any]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def content_filter_error() -> web.Response:
    """Azure's 400 for a prompt its content filter refused."""
    result = {"hate": {"filtered": True, "severity": "high"}, "violence": _SAFE}
    error = {
        "message": FILTER_MESSAGE,
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": result},
    }
    return _json({"error": error}, 400)


class FakeAzure:
    """The fake's state: its key, the tokens it issued, and what it was asked."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.issued: set[str] = set()
        self.token_requests = 0
        self.calls: list[tuple[str, str, str]] = []
        self.requests: list[Json] = []
        self.responses: dict[str, Json] = {}

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application()
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._deployment_chat)
        app.router.add_post("/openai/deployments/{deployment}/embeddings", self._deployment_embeddings)
        app.router.add_post("/openai/v1/chat/completions", self._v1_chat)
        app.router.add_post("/openai/v1/responses", self._create_response)
        app.router.add_get("/openai/v1/responses/{id}", self._stored_response)
        app.router.add_delete("/openai/v1/responses/{id}", self._stored_response)
        app.router.add_post("/models/chat/completions", self._models_chat)
        app.router.add_post("/models/embeddings", self._models_embeddings)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        return app

    def _auth_scheme(self, request: web.Request) -> str | None:
        """Which accepted credential the call carries ("api-key", "bearer-key", "entra"), or None."""
        if request.headers.get("api-key") == self.api_key:
            return "api-key"
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer == self.api_key:
            return "bearer-key"
        return "entra" if bearer in self.issued else None

    async def _checked(
        self, request: web.Request, versioned: bool, has_body: bool = True
    ) -> Json | web.Response:
        scheme = self._auth_scheme(request)
        version = request.query.get("api-version", "")
        self.calls.append((request.path, version, scheme or ""))
        if scheme is None:
            message = "Access denied due to invalid subscription key or wrong API endpoint."
            return _json({"error": {"code": "401", "message": message}}, 401)
        if versioned != bool(version):
            message = (
                "Missing required query parameter: api-version" if versioned else "api-version not allowed"
            )
            return _json({"error": {"code": "BadRequest", "message": message}}, 400)
        if not has_body:
            return {}
        body: Json = await request.json()
        self.requests.append(body)
        return body

    async def _chat(self, request: web.Request, model: str, versioned: bool) -> web.StreamResponse:
        body = await self._checked(request, versioned)
        if isinstance(body, web.Response):
            return body
        if (model or body.get("model")) == FILTERED:
            return content_filter_error()
        if body.get("stream"):
            return await self._stream(request, body)
        message = {"role": "assistant", "content": "".join(ANSWER_WORDS)}
        choice = {"index": 0, "message": message, "finish_reason": "stop", "content_filter_results": {}}
        return _json({
            "id": "chatcmpl-azure-" + secrets.token_hex(4),
            "object": "chat.completion",
            "created": 1_750_000_000,
            "model": "gpt-4o-2024-11-20",
            "choices": [choice],
            "usage": USAGE,
            "prompt_filter_results": PROMPT_FILTER_RESULTS,
        })  # fmt: skip

    async def _stream(self, request: web.Request, body: Json) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base = {"id": "chatcmpl-azure-stream", "object": "chat.completion.chunk", "created": 1_750_000_000}
        chunks: list[Json] = [
            {**base, "model": "", "choices": [], "prompt_filter_results": PROMPT_FILTER_RESULTS}
        ]
        for i, word in enumerate(ANSWER_WORDS):
            delta = {"role": "assistant", "content": word} if i == 0 else {"content": word}
            chunks.append(
                {**base, "model": "gpt-4o", "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            )
        chunks.append(
            {**base, "model": "gpt-4o", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        )
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "model": "gpt-4o", "choices": [], "usage": USAGE})
        for chunk in chunks:
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _embeddings(self, request: web.Request, model: str, versioned: bool) -> web.Response:
        body = await self._checked(request, versioned)
        if isinstance(body, web.Response):
            return body
        raw = body.get("input")
        inputs = raw if isinstance(raw, list) else [raw]
        data = [
            {"object": "embedding", "index": i, "embedding": fake_embedding(str(t))}
            for i, t in enumerate(inputs)
        ]
        tokens = EMBEDDING_TOKENS_PER_INPUT * len(inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return _json({"object": "list", "data": data, "model": model or body.get("model"), "usage": usage})

    async def _deployment_chat(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, request.match_info["deployment"], versioned=True)

    async def _deployment_embeddings(self, request: web.Request) -> web.Response:
        return await self._embeddings(request, request.match_info["deployment"], versioned=True)

    async def _v1_chat(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, "", versioned=False)

    async def _models_chat(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, "", versioned=True)

    async def _models_embeddings(self, request: web.Request) -> web.Response:
        return await self._embeddings(request, "", versioned=True)

    async def _create_response(self, request: web.Request) -> web.Response:
        body = await self._checked(request, versioned=False)
        if isinstance(body, web.Response):
            return body
        text = {"type": "output_text", "text": "".join(ANSWER_WORDS), "annotations": []}
        message = {
            "type": "message",
            "id": "msg_fake",
            "status": "completed",
            "role": "assistant",
            "content": [text],
        }
        usage = {
            "input_tokens": USAGE["prompt_tokens"],
            "output_tokens": USAGE["completion_tokens"],
            "total_tokens": USAGE["total_tokens"],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        }
        response_id = "resp_" + secrets.token_hex(8)
        self.responses[response_id] = {
            "id": response_id, "object": "response", "created_at": 1_750_000_000, "status": "completed",
            "model": body.get("model"), "output": [message], "usage": usage, "parallel_tool_calls": True,
            "tool_choice": "auto", "tools": [],
        }  # fmt: skip
        return _json(self.responses[response_id])

    async def _stored_response(self, request: web.Request) -> web.Response:
        checked = await self._checked(request, versioned=False, has_body=False)
        if isinstance(checked, web.Response):
            return checked
        response_id = request.match_info["id"]
        if response_id not in self.responses:
            return _json(
                {"error": {"code": "not_found", "message": f"Response {response_id} not found."}}, 404
            )
        if request.method == "DELETE":
            del self.responses[response_id]
            return _json({"id": response_id, "object": "response.deleted", "deleted": True})
        return _json(self.responses[response_id])

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        if request.match_info["tenant"] == FAILING_TENANT:
            return _json({"error": "temporarily_unavailable"}, 500)
        if form.get("grant_type") != "client_credentials" or form.get("scope") != (
            "https://cognitiveservices.azure.com/.default"
        ):
            return _json({"error": "invalid_request"}, 400)
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return _json(
                {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."}, 401
            )
        token = "eyJfake." + secrets.token_urlsafe(16)
        self.issued.add(token)
        return _json(
            {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}
        )
