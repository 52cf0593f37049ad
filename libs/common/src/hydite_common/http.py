"""aiohttp pieces every service shares: JSON responses, the error middleware, health routes."""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from hydite_common.errors import (
    HyditeError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    to_openai_error,
)

log = logging.getLogger(__name__)

JSON_HEADERS = {"Content-Type": "application/json"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ReadinessCheck = Callable[[], Awaitable[str | None]]
"""Returns None when ready, else the reason it is not."""


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response serialised with orjson."""
    return web.Response(
        body=orjson.dumps(payload), status=status, headers={**JSON_HEADERS, **(headers or {})}
    )


def error_response(exc: BaseException, headers: dict[str, str] | None = None) -> web.Response:
    """An OpenAI-shaped error response for any exception."""
    status, body = to_openai_error(exc)
    extra = exc.headers if isinstance(exc, HyditeError) else {}
    return web.Response(body=body, status=status, headers={**JSON_HEADERS, **extra, **(headers or {})})


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or an OpenAI-shaped 400."""
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"request body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            code="invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequestError("request body must be a JSON object", code="invalid_json")
    return body


def response_for_exception(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The OpenAI-shaped error response for an exception a handler raised; never a traceback.
    Redirects and other non-error HTTP exceptions are raised again for aiohttp to send."""
    if isinstance(exc, HyditeError):
        return error_response(exc)
    if isinstance(exc, web.HTTPException):
        if exc.status == 404:
            return error_response(NotFoundError(f"no route for {request.method} {request.path}"))
        if exc.status == 405:
            return _method_not_allowed(request, exc)
        if exc.status == 413:
            return error_response(PayloadTooLargeError("request body exceeds the configured limit"))
        if exc.status >= 400:
            return error_response(InvalidRequestError(exc.reason))
        raise exc
    if isinstance(exc, ConnectionResetError):
        # The client left mid-request (aiohttp's ClientConnectionResetError is one): nobody will
        # read the answer, and nothing went wrong on this side.
        log.debug("client left during %s %s", request.method, request.path)
        return error_response(
            InvalidRequestError("the client closed the connection", code="client_disconnected")
        )
    log.exception("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return error_response(exc)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every error before the response starts as OpenAI error JSON; never a traceback."""
    try:
        return await handler(request)
    except Exception as exc:
        return response_for_exception(request, exc)


def rendering_errors(handler: Handler) -> Handler:
    """handler with error_middleware's rendering, for an app that keeps middlewares off its routes."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Exception as exc:
            return response_for_exception(request, exc)

    return guarded


def _method_not_allowed(request: web.Request, exc: web.HTTPException) -> web.Response:
    err = InvalidRequestError(
        f"method {request.method} not allowed on {request.path}", code="method_not_allowed"
    )
    response = error_response(err)
    response.set_status(405)
    if allow := exc.headers.get("Allow"):
        response.headers["Allow"] = allow
    return response


def service_version() -> str:
    """The version of the installed Hydite packages."""
    try:
        return importlib.metadata.version("hydite-common")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def health_routes(
    readiness: ReadinessCheck, details: Callable[[], dict[str, Any]] | None = None
) -> list[web.RouteDef]:
    """GET /health/liveliness (process alive) and /health/readiness (dependencies ok, with the
    version and the service's details; /health/readiness/details is the same answer, where
    LiteLLM's clients look for it)."""
    version = service_version()

    async def liveliness(_: web.Request) -> web.Response:
        return json_response({"status": "healthy"})

    async def ready(_: web.Request) -> web.Response:
        # litellm_version: the same version, under the name LiteLLM's clients and probes read.
        versions: dict[str, Any] = {"hydite_version": version, "litellm_version": version}
        if details is not None:
            versions.update(details())
        reason = await readiness()
        if reason is None:
            return json_response({"status": "ready", **versions})
        return json_response({"status": "not_ready", "reason": reason, **versions}, status=503)

    return [
        web.get("/health/liveliness", liveliness),
        web.get("/health/liveness", liveliness),
        web.get("/health/readiness", ready),
        web.get("/health/readiness/details", ready),
    ]
