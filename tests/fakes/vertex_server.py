"""A fake Google Vertex AI: an OAuth token endpoint for service accounts and the Vertex routes of
Gemini and Claude models, answered by the fake Gemini and fake Anthropic upstreams.

It runs on its own event loop in a background thread (``FakeServerThread``).

Endpoints:

- POST /token: Google's JWT-bearer grant (``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``,
  ``assertion=<JWT>``). The assertion's signature is checked with google-auth against the public key
  registered for its issuer (the service account's ``client_email``), with Google's token endpoint as
  the audience (as google-auth writes it) and the cloud-platform scope; a valid one gets
  ``{"access_token", "expires_in": 3600, "token_type": "Bearer"}``, anything else 400
  ``invalid_grant``, as Google answers. Every request is
  counted in ``token_requests``, every token issued in ``tokens_by_account``.
- POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:{method}
  (generateContent, streamGenerateContent?alt=sse, ...): forwarded as it is to the fake Gemini's
  /v1beta/models/{model}:{method} with its API key.
- POST /v1/projects/{project}/locations/{location}/publishers/anthropic/models/{model}:rawPredict and
  :streamRawPredict: the body must have no ``model`` and ``anthropic_version: vertex-2023-10-16`` (and
  ``stream: true`` exactly on streamRawPredict), else a 400 ``invalid_request_error``; it is forwarded
  to the fake Anthropic's /v1/messages with the model from the path and its API key. The model
  ``count-tokens`` (rawPredict, the body naming the model counted for) is forwarded to its
  /v1/messages/count_tokens.

The Vertex routes want ``Authorization: Bearer <a token this fake issued>`` (else 401
``UNAUTHENTICATED``); their answers, streams and failure modes (picked by model name) are the fake
upstreams' own. Every Vertex call is recorded in ``calls`` as (path, publisher) and the body it
came with in ``bodies``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from google.auth import jwt

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
"""The audience of every service-account assertion, wherever its token_uri points."""
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
MESSAGES_API_VERSION = "2023-06-01"
COUNT_TOKENS_MODEL = "count-tokens"
TOKEN_LIFETIME_SECONDS = 3600
Json = dict[str, Any]


def _google_error(status: int, code_name: str, message: str) -> web.Response:
    body = {"error": {"code": status, "message": message, "status": code_name}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _anthropic_error(message: str) -> web.Response:
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    return web.Response(status=400, body=orjson.dumps(body), content_type="application/json")


def _invalid_grant(description: str) -> web.Response:
    body = {"error": "invalid_grant", "error_description": description}
    return web.Response(status=400, body=orjson.dumps(body), content_type="application/json")


@dataclass
class FakeVertex:
    """The fake's service accounts, the upstreams it forwards to, and what it has seen."""

    gemini_base: str
    """The fake Gemini's base URL (without an API version)."""
    anthropic_base: str
    """The fake Anthropic's base URL (without /v1)."""
    upstream_key: str
    accounts: dict[str, str] = field(default_factory=dict)
    """client_email -> the PEM public key its assertions are signed for."""
    token_requests: int = 0
    tokens_by_account: dict[str, int] = field(default_factory=dict)
    """Tokens issued per client_email."""
    issued: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)
    bodies: list[Json] = field(default_factory=list)
    base_url: str = ""
    """Where this fake listens (set once started)."""
    _session: aiohttp.ClientSession | None = None

    def register(self, client_email: str, public_key_pem: str) -> None:
        """Accept assertions of this service account signed with the matching private key."""
        self.accounts[client_email] = public_key_pem

    async def token(self, request: web.Request) -> web.Response:
        """POST /token: a JWT-bearer grant for a registered service account."""
        self.token_requests += 1
        form = await request.post()
        if form.get("grant_type") != JWT_BEARER_GRANT:
            return _invalid_grant("Invalid grant_type.")
        assertion = str(form.get("assertion", ""))
        try:
            unverified = jwt.decode(assertion, verify=False)  # type: ignore[no-untyped-call]
        except ValueError:
            return _invalid_grant("Invalid JWT.")
        key = self.accounts.get(str(unverified.get("iss", "")))
        if key is None:
            return _invalid_grant("Invalid grant: account not found")
        try:
            claims = jwt.decode(assertion, certs=key, audience=GOOGLE_TOKEN_AUDIENCE)  # type: ignore[no-untyped-call]
        except ValueError:
            return _invalid_grant("Invalid JWT Signature.")
        if CLOUD_PLATFORM_SCOPE not in str(claims.get("scope", "")).split():
            return _invalid_grant("Invalid scope.")
        account = str(claims["iss"])
        self.tokens_by_account[account] = self.tokens_by_account.get(account, 0) + 1
        token = f"ya29.fake-{self.token_requests}-{len(self.issued)}"
        self.issued.add(token)
        answer = {"access_token": token, "expires_in": TOKEN_LIFETIME_SECONDS, "token_type": "Bearer"}
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token in self.issued

    async def google_model(self, request: web.Request) -> web.StreamResponse:
        """A Gemini model's method, answered by the fake Gemini."""
        self.calls.append((request.path, "google"))
        if not self._authorized(request):
            return _google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        raw = await request.read()
        self.bodies.append(orjson.loads(raw) if raw else {})
        model, method = request.match_info["model"], request.match_info["method"]
        url = f"{self.gemini_base}/v1beta/models/{model}:{method}"
        if request.query_string:
            url += "?" + request.query_string
        headers = {"Content-Type": "application/json", "x-goog-api-key": self.upstream_key}
        return await self._forward(request, url, headers, raw)

    async def anthropic_model(self, request: web.Request) -> web.StreamResponse:
        """A Claude model's rawPredict / streamRawPredict, answered by the fake Anthropic."""
        self.calls.append((request.path, "anthropic"))
        if not self._authorized(request):
            return _google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        model, method = request.match_info["model"], request.match_info["method"]
        if method not in ("rawPredict", "streamRawPredict"):
            return _google_error(404, "NOT_FOUND", f"Method {method} is not found.")
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _anthropic_error("The request body is not valid JSON.")
        if not isinstance(body, dict):
            return _anthropic_error("The request body must be an object.")
        self.bodies.append(body)
        if body.get("anthropic_version") != VERTEX_ANTHROPIC_VERSION:
            return _anthropic_error(f"anthropic_version: Input should be '{VERTEX_ANTHROPIC_VERSION}'")
        messages = {k: v for k, v in body.items() if k != "anthropic_version"}
        headers = {
            "Content-Type": "application/json",
            "x-api-key": self.upstream_key,
            "anthropic-version": MESSAGES_API_VERSION,
        }
        if beta := request.headers.get("anthropic-beta"):
            headers["anthropic-beta"] = beta
        if model == COUNT_TOKENS_MODEL:
            if method != "rawPredict" or "model" not in body:
                return _anthropic_error("count-tokens takes rawPredict and a body naming its model")
            url = f"{self.anthropic_base}/v1/messages/count_tokens"
            return await self._forward(request, url, headers, orjson.dumps(messages))
        if "model" in body:
            return _anthropic_error("model: Extra inputs are not permitted")
        if (body.get("stream") is True) != (method == "streamRawPredict"):
            return _anthropic_error("stream must be true on streamRawPredict and absent on rawPredict")
        raw = orjson.dumps({**messages, "model": model})
        return await self._forward(request, f"{self.anthropic_base}/v1/messages", headers, raw)

    async def _forward(
        self, request: web.Request, url: str, headers: dict[str, str], body: bytes
    ) -> web.StreamResponse:
        """The upstream's answer relayed as it arrives (streams chunk by chunk)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(url, data=body, headers=headers) as upstream:
            response = web.StreamResponse(status=upstream.status)
            response.content_type = upstream.content_type
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def _close(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    def app(self) -> web.Application:
        """The aiohttp app: /token and the Vertex model routes."""
        app = web.Application()
        app.router.add_post("/token", self.token)
        models = "/v1/projects/{project}/locations/{location}/publishers"
        app.router.add_post(
            f"{models}/google/models/{{model:[^/:]+}}:{{method:[A-Za-z]+}}", self.google_model
        )
        app.router.add_post(
            f"{models}/anthropic/models/{{model:[^/:]+}}:{{method:[A-Za-z]+}}", self.anthropic_model
        )
        app.on_cleanup.append(self._close)
        return app
