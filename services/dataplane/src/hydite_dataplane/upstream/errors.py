"""The one map from what goes wrong with a provider to gateway errors: transport failures (by the
phase they happened in) and error responses (by the provider's wire format), and the redaction of
everything a provider's error carries, in a response or as a stream event.

Redaction takes out the deployment's own credentials (exact match, whatever their shape: no
`sk-` prefix, `.`, `/`, `+`) and then anything that looks like a key or a bearer token
(`hydite_common.telemetry.redact`), from every field (message, code, param, passed headers).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from hydite_common import errors
from hydite_common.telemetry import redact
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.anthropic_response import anthropic_error_fields
from hydite_dataplane.providers.azure_errors import is_content_filter_refusal
from hydite_dataplane.providers.bedrock_response import bedrock_error_fields, error_type
from hydite_dataplane.upstream.http11 import HttpClientError, Phase
from hydite_dataplane.upstream.sse import data_of

MAX_UPSTREAM_MESSAGE_CHARS = 2000
MAX_UPSTREAM_CODE_CHARS = 128
"""An error code also reaches the usage event."""
MAX_UPSTREAM_PARAM_CHARS = 256
MIN_CREDENTIAL_CHARS = 4
"""Shorter credentials (placeholders such as "x") are not searched for: they would blot out words."""
REDACTED = "[redacted]"
_CREDENTIAL_WORDS = ("key", "secret", "token", "password", "credential")


def deployment_credentials(target: DeploymentTarget) -> tuple[str, ...]:
    """The deployment's own secrets to take out of anything its provider says: its api_key and
    any string parameter named like a credential (aws_secret_access_key, ...)."""
    found = [target.api_key]
    for name, value in target.extra_params.items():
        if isinstance(value, str) and any(word in name.lower() for word in _CREDENTIAL_WORDS):
            found.append(value)
    # Longest first: a credential that contains another is replaced whole.
    return tuple(sorted({c for c in found if len(c) >= MIN_CREDENTIAL_CHARS}, key=len, reverse=True))


def redacted(text: str, credentials: Sequence[str]) -> str:
    """text without the credentials (exact match) and without anything that looks like a key."""
    for credential in credentials:
        if credential in text:
            text = text.replace(credential, REDACTED)
    return redact(text)


def _redacted_value(value: Any, credentials: Sequence[str]) -> Any:
    if isinstance(value, str):
        return redacted(value, credentials)
    if isinstance(value, dict):
        return {redacted(str(k), credentials): _redacted_value(v, credentials) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted_value(v, credentials) for v in value]
    return value


def _is_error_event(event: bytes, payload: Any) -> bool:
    for line in event.split(b"\n"):
        if line.startswith(b"event:") and line[6:].strip() == b"error":
            return True
    if not isinstance(payload, dict):
        return False
    response = payload.get("response")
    return bool(
        payload.get("error")
        or payload.get("type") == "error"
        or (isinstance(response, dict) and response.get("error"))
    )


def redacted_stream_event(event: bytes, credentials: Sequence[str]) -> bytes:
    """One SSE event as the client may see it: an error event (`data: {"error": ...}`, `event:
    error`, a failed response) with every string redacted; any other event unchanged."""
    data = data_of(event)
    try:
        payload: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        payload = None
    if not _is_error_event(event, payload):
        return event
    cleaned = (
        orjson.dumps(_redacted_value(payload, credentials))
        if payload is not None
        else redacted(data.decode(errors="replace"), credentials).encode()
    )
    if cleaned == data:
        return event
    kept = [line for line in event.split(b"\n") if line and not line.startswith(b"data:")]
    return b"".join(line + b"\n" for line in kept) + b"data: " + cleaned + b"\n\n"


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
        # More than is shown: redaction runs before the cut, so no key is cut in half and kept.
        return body[: MAX_UPSTREAM_MESSAGE_CHARS * 4].decode(errors="replace").strip(), None, None
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
    return str(parsed)[: MAX_UPSTREAM_MESSAGE_CHARS * 4], None, None


def azure_error_fields(body: bytes) -> ErrorFields:
    """OpenAI's shape; a content-filter refusal is content_policy_violation (its message kept), so
    content-policy fallbacks apply."""
    message, code, param = openai_error_fields(body)
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return message, code, param
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict) and is_content_filter_refusal(error):
        code = "content_policy_violation"
    return message, code, param


def mistral_error_fields(body: bytes) -> ErrorFields:
    """Mistral's {"object": "error", "message": ..., "type", "param", "code"}, where a rejected field's
    message is a validation detail list ({"detail": [{"loc": [...], "msg": ...}]}); else OpenAI's."""
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return openai_error_fields(body)
    if not isinstance(parsed, dict) or "error" in parsed or "message" not in parsed:
        return openai_error_fields(body)
    message = parsed["message"]
    details = message.get("detail") if isinstance(message, dict) else message
    param = parsed.get("param") if isinstance(parsed.get("param"), str) else None
    if isinstance(details, list) and details and all(isinstance(d, dict) for d in details):
        places = [".".join(str(part) for part in d.get("loc") or [] if part != "body") for d in details]
        message = "; ".join(
            f"{place}: {d.get('msg')}" if place else str(d.get("msg"))
            for place, d in zip(places, details, strict=True)
        )
        param = param or places[0] or None
    code = parsed.get("code")
    return str(message), str(code) if code else None, param


GEMINI_CONTEXT_WINDOW_PHRASES = ("exceeds the maximum number of tokens", "input token count")


def _google_error(body: bytes) -> dict[str, Any] | None:
    """The `error` object of a Google API error body (a stream without alt=sse wraps it in a list)."""
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else None


def gemini_error_fields(body: bytes) -> ErrorFields:
    """{"error": {code, message, status}}: the status lowercased is the code, and a prompt over the
    model's token limit is context_length_exceeded (so context-window fallbacks apply)."""
    error = _google_error(body)
    if error is None:
        return openai_error_fields(body)
    message = str(error.get("message") or "")
    status = error.get("status")
    code = status.lower() if isinstance(status, str) and status else None
    if any(phrase in message.lower() for phrase in GEMINI_CONTEXT_WINDOW_PHRASES):
        code = "context_length_exceeded"
    return message, code, None


def gemini_retry_after(body: bytes) -> str | None:
    """Whole seconds of the google.rpc.RetryInfo retryDelay ("1s", "30.5s") a Google error carries."""
    error = _google_error(body)
    details = error.get("details") if error is not None else None
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict) or not str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            continue
        delay = detail.get("retryDelay")
        try:
            seconds = float(delay.removesuffix("s")) if isinstance(delay, str) else -1.0
        except ValueError:
            return None
        return str(math.ceil(seconds)) if 0 <= seconds < 1e6 else None
    return None


ERROR_BODY_PARSERS: dict[str, Callable[[bytes], ErrorFields]] = {
    "openai": openai_error_fields,
    "anthropic": anthropic_error_fields,
    "gemini": gemini_error_fields,
    "mistral": mistral_error_fields,
    "bedrock": bedrock_error_fields,
    "azure": azure_error_fields,
}
"""How each provider wire format writes an error body (Cohere and Jina answer close enough to OpenAI's)."""
RETRY_AFTER_IN_BODY: dict[str, Callable[[bytes], str | None]] = {"gemini": gemini_retry_after}
"""Wire formats that say when to retry in the error body rather than a retry-after header."""
ERROR_CODE_IN_HEADERS: dict[str, Callable[[Mapping[str, str]], str | None]] = {"bedrock": error_type}
"""Wire formats whose error body leaves the error's name to a header (AWS's x-amzn-ErrorType)."""

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
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    error_format: str = "openai",
    *,
    credentials: Sequence[str],
) -> errors.HyditeError:
    """The gateway error for a provider's error response, every field redacted of credentials
    (the deployment's own, see `deployment_credentials`, and anything shaped like a key)."""
    message, code, param = ERROR_BODY_PARSERS[error_format](body)
    if code is None and error_format in ERROR_CODE_IN_HEADERS:
        code = ERROR_CODE_IN_HEADERS[error_format](headers)
    message = (
        redacted(message, credentials)[:MAX_UPSTREAM_MESSAGE_CHARS] or f"provider returned HTTP {status}"
    )
    error_class = _STATUS_TO_ERROR.get(
        status, errors.UpstreamError if status >= 500 else errors.InvalidRequestError
    )
    if status == 401:
        code = "upstream_authentication_error"
    elif code is not None:
        code = redacted(code, credentials)[:MAX_UPSTREAM_CODE_CHARS]
    if param is not None:
        param = redacted(param, credentials)[:MAX_UPSTREAM_PARAM_CHARS]
    retry_after = headers.get("retry-after")
    if retry_after is None and error_format in RETRY_AFTER_IN_BODY:
        retry_after = RETRY_AFTER_IN_BODY[error_format](body)
    passed_headers = {"retry-after": redacted(retry_after, credentials)[:64]} if retry_after else {}
    return error_class(f"provider error: {message}", code=code, param=param, headers=passed_headers)
