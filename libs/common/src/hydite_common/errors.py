"""The one error hierarchy of Hydite and its rendering as OpenAI error JSON."""

from __future__ import annotations

from collections.abc import Mapping

import orjson


class HyditeError(Exception):
    """Base of every error a client may see; carries HTTP status and OpenAI type/code."""

    status: int = 500
    error_type: str = "api_error"
    default_code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param
        self.headers = dict(headers or {})

    def to_body(self) -> dict[str, object]:
        """The OpenAI error object: {"error": {message, type, code, param}}."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "code": self.code,
                "param": self.param,
            }
        }


class InvalidRequestError(HyditeError):
    """The request is malformed or names a bad parameter (400)."""

    status = 400
    error_type = "invalid_request_error"
    default_code = "invalid_request"


class AuthenticationError(HyditeError):
    """No key, an unknown key, or a blocked or expired key (401)."""

    status = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(HyditeError):
    """The key is valid but may not do this (403)."""

    status = 403
    error_type = "permission_error"
    default_code = "permission_denied"


class NotFoundError(HyditeError):
    """The model, route or resource does not exist (404)."""

    status = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class RequestTimeoutError(HyditeError):
    """The client did not send its request body in time (408)."""

    status = 408
    error_type = "invalid_request_error"
    default_code = "request_timeout"


class ConflictError(HyditeError):
    """The write conflicts with existing state, e.g. a duplicate alias (409)."""

    status = 409
    error_type = "invalid_request_error"
    default_code = "conflict"


class PayloadTooLargeError(HyditeError):
    """The request body exceeds the configured limit (413)."""

    status = 413
    error_type = "invalid_request_error"
    default_code = "payload_too_large"


class UnprocessableEntityError(HyditeError):
    """The body parses but a field has the wrong type or value (422)."""

    status = 422
    error_type = "invalid_request_error"
    default_code = "invalid_value"


class RateLimitError(HyditeError):
    """A rate limit or quota was hit (429)."""

    status = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class BudgetExceededError(HyditeError):
    """A budget has no room for the request (429, OpenAI's insufficient_quota)."""

    status = 429
    error_type = "insufficient_quota"
    default_code = "budget_exceeded"


class UpstreamError(HyditeError):
    """The provider failed or answered something the gateway cannot use (502)."""

    status = 502
    error_type = "api_error"
    default_code = "upstream_error"


class ServiceUnavailableError(HyditeError):
    """The gateway cannot serve yet or any more, e.g. no config snapshot (503)."""

    status = 503
    error_type = "api_error"
    default_code = "service_unavailable"


class UpstreamTimeoutError(HyditeError):
    """The provider did not answer within the deployment's timeout (504)."""

    status = 504
    error_type = "timeout_error"
    default_code = "timeout"


def to_openai_error(exc: BaseException) -> tuple[int, bytes]:
    """HTTP status and OpenAI error JSON body for any exception; unknown ones hide details."""
    if isinstance(exc, HyditeError):
        return exc.status, orjson.dumps(exc.to_body())
    internal = HyditeError("internal gateway error")
    return internal.status, orjson.dumps(internal.to_body())
