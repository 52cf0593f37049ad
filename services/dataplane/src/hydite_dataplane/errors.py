"""Errors rendered in the wire format of the route that failed (OpenAI's JSON, or Anthropic's shape
on /v1/messages), both as a response and as an event inside a started stream."""

from __future__ import annotations

from typing import Protocol

import orjson
from aiohttp import web

from hydite_common.errors import HyditeError
from hydite_common.http import JSON_HEADERS, error_response
from hydite_dataplane.upstream.sse import data_event


class ErrorRenderer(Protocol):
    """Renders gateway errors for one wire format."""

    def response(self, error: HyditeError) -> web.Response:
        """The error as a complete HTTP response (nothing sent yet)."""
        ...

    def stream_event(self, error: HyditeError) -> bytes:
        """The error as one SSE event (the status line is already sent)."""
        ...


class OpenAIErrorRenderer:
    """{"error": {message, type, code, param}} with the error's HTTP status."""

    def response(self, error: HyditeError) -> web.Response:
        """OpenAI error JSON."""
        return error_response(error)

    def stream_event(self, error: HyditeError) -> bytes:
        """OpenAI error object as an SSE data event."""
        return data_event(orjson.dumps(error.to_body()))


ANTHROPIC_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
"""Anthropic's error type for each HTTP status it documents (504 as its gateway timeout, 503 as a
temporary lack of capacity); any other 4xx is an invalid_request_error, any other 5xx an api_error."""

OVERLOADED_CODE = "overloaded_error"
"""The code an upstream overload carries (Anthropic's own 529 becomes a gateway error with it)."""
OVERLOADED_STATUS = 529


def anthropic_status(error: HyditeError) -> int:
    """The HTTP status: the error's own, except that an upstream overload is Anthropic's 529,
    which its clients know an overload by."""
    return OVERLOADED_STATUS if error.code == OVERLOADED_CODE and error.status >= 500 else error.status


def anthropic_error_type(error: HyditeError) -> str:
    """The `error.type` Anthropic gives a failure of this status (an overload keeps its name)."""
    if error.code == OVERLOADED_CODE:
        return "overloaded_error"
    found = ANTHROPIC_ERROR_TYPES.get(error.status)
    if found is not None:
        return found
    return "api_error" if error.status >= 500 else "invalid_request_error"


def anthropic_error_body(error: HyditeError) -> dict[str, object]:
    """{"type": "error", "error": {"type", "message"}}, and the request's id when it has one."""
    body: dict[str, object] = {
        "type": "error",
        "error": {"type": anthropic_error_type(error), "message": error.message},
    }
    request_id = error.headers.get("x-request-id")
    if request_id:
        body["request_id"] = request_id
    return body


class AnthropicErrorRenderer:
    """Anthropic's error shape with the error's HTTP status (see `anthropic_status`) and headers
    (retry-after, x-request-id; the request id also as Anthropic's `request-id`, which its SDK
    reads)."""

    def response(self, error: HyditeError) -> web.Response:
        """Anthropic error JSON."""
        headers = {**JSON_HEADERS, **error.headers}
        if "x-request-id" in error.headers:
            headers["request-id"] = error.headers["x-request-id"]
        return web.Response(
            body=orjson.dumps(anthropic_error_body(error)), status=anthropic_status(error), headers=headers
        )

    def stream_event(self, error: HyditeError) -> bytes:
        """`event: error` carrying the same body, as Anthropic ends a stream that failed."""
        return b"event: error\ndata: " + orjson.dumps(anthropic_error_body(error)) + b"\n\n"


ERROR_RENDERERS: dict[str, ErrorRenderer] = {
    "openai": OpenAIErrorRenderer(),
    "anthropic": AnthropicErrorRenderer(),
}
