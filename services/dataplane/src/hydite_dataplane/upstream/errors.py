"""The one map from what goes wrong with a provider to gateway errors: transport failures (by the
phase they happened in) and error responses (by the provider's wire format), messages redacted."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from hydite_common import errors
from hydite_common.telemetry import redact
from hydite_dataplane.upstream.http11 import HttpClientError, Phase

MAX_UPSTREAM_MESSAGE_CHARS = 2000

_TIMEOUTS: dict[Phase, str] = {
    "head": "the provider did not answer in time",
    "body": "the provider did not finish its answer in time",
    "stream": "the provider stopped sending within the stream timeout",
}


def transport_error(error: BaseException, phase: Phase) -> BaseException:
    """The gateway error for a failure of the provider connection; anything else is left as it is."""
    if isinstance(error, TimeoutError):
        return errors.UpstreamTimeoutError(_TIMEOUTS[phase])
    if not isinstance(error, HttpClientError):
        return error
    if phase == "head":
        return errors.UpstreamError(f"could not reach the provider: {error}")
    if phase == "body":
        return errors.UpstreamError(f"the provider's answer broke off: {type(error).__name__}")
    return errors.UpstreamError(f"the provider's stream broke off: {error}")


ErrorFields = tuple[str, str | None, str | None]
"""message, code and param of a provider's error body."""


def openai_error_fields(body: bytes) -> ErrorFields:
    """{"error": {message, code, param}} (or {"error": "text"}); anything else as text."""
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:MAX_UPSTREAM_MESSAGE_CHARS].decode(errors="replace").strip(), None, None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        code = error.get("code")
        param = error.get("param")
        return (
            str(error.get("message") or ""),
            str(code) if code else None,
            param if isinstance(param, str) else None,
        )
    if isinstance(error, str):
        return error, None, None
    return str(parsed)[:MAX_UPSTREAM_MESSAGE_CHARS], None, None


ERROR_BODY_PARSERS: dict[str, Callable[[bytes], ErrorFields]] = {"openai": openai_error_fields}
"""How each provider wire format writes an error body (Cohere and Jina answer close enough to OpenAI's)."""

_STATUS_TO_ERROR: dict[int, type[errors.HyditeError]] = {
    400: errors.InvalidRequestError,
    401: errors.AuthenticationError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    408: errors.UpstreamTimeoutError,
    409: errors.ConflictError,
    413: errors.PayloadTooLargeError,
    422: errors.UnprocessableEntityError,
    429: errors.RateLimitError,
    503: errors.ServiceUnavailableError,
    504: errors.UpstreamTimeoutError,
}


def error_from_upstream(
    status: int, body: bytes, headers: Mapping[str, str], error_format: str = "openai"
) -> errors.HyditeError:
    """The gateway error for a provider's error response (message redacted, never raw)."""
    message, code, param = ERROR_BODY_PARSERS[error_format](body)
    message = redact(message)[:MAX_UPSTREAM_MESSAGE_CHARS] or f"provider returned HTTP {status}"
    error_class = _STATUS_TO_ERROR.get(
        status, errors.UpstreamError if status >= 500 else errors.InvalidRequestError
    )
    if status == 401:
        code = "upstream_authentication_error"
    passed_headers = {"retry-after": headers["retry-after"]} if "retry-after" in headers else {}
    return error_class(f"provider error: {message}", code=code, param=param, headers=passed_headers)
