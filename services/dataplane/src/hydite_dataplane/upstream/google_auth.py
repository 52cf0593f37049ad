"""Google OAuth access tokens for Vertex AI deployments, as a call authorizer.

A deployment names its service account in litellm_params `vertex_credentials` (the key file's JSON,
as a string or an object, or the path of the file); without it, Application Default Credentials
are used. google-auth signs the service-account JWT and exchanges it at the key file's
`token_uri`; that exchange is blocking, so it runs in a worker thread inside the `TokenCache`
fetch, which shares one fetch per credential and refreshes ahead of expiry, off the request path.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from hydite_common.errors import AuthenticationError
from hydite_common.telemetry import redact
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.upstream.credentials import Token, TokenCache
from hydite_dataplane.upstream.transport import UpstreamCall

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
CREDENTIALS_PARAM = "vertex_credentials"
APPLICATION_DEFAULT = ""
"""The cache key of Application Default Credentials (a deployment without vertex_credentials)."""
TOKEN_REQUEST_TIMEOUT_SECONDS = 30.0
DEFAULT_TOKEN_LIFETIME_SECONDS = 3600.0
"""Used when a token comes back without an expiry."""
MAX_REASON_CHARS = 300


class CredentialsRefused(AuthenticationError):
    """The service account could not be used: its key file is unusable, or Google refused it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, code="upstream_credentials_refused")
        self.reason = reason


def credential_source(params: Mapping[str, Any]) -> str:
    """The deployment's `vertex_credentials` as one hashable string (a JSON object sorted, so two
    deployments sharing a service account share its token), or APPLICATION_DEFAULT."""
    value = params.get(CREDENTIALS_PARAM)
    if value is None or value == "":
        return APPLICATION_DEFAULT
    if isinstance(value, dict):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if isinstance(value, str):
        return value.strip()
    raise CredentialsRefused(f"{CREDENTIALS_PARAM} must be a service account JSON, an object or a path")


def _service_account_info(source: str) -> dict[str, Any]:
    """The key file's fields, from its JSON or from the file it names (read in the worker thread)."""
    text = source
    if not source.startswith(("{", "[")):
        try:
            text = Path(source).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise CredentialsRefused(
                f"{CREDENTIALS_PARAM} names a file that cannot be read ({type(exc).__name__})"
            ) from None
    try:
        info = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise CredentialsRefused(f"{CREDENTIALS_PARAM} is not valid JSON") from None
    if not isinstance(info, dict):
        raise CredentialsRefused(f"{CREDENTIALS_PARAM} must be a JSON object")
    return info


def _credentials(source: str) -> Credentials:
    # google-auth (13 MB with its transport) is loaded by the first Vertex call, not at start.
    import google.auth
    import google.auth.exceptions
    from google.oauth2 import service_account

    if source == APPLICATION_DEFAULT:
        try:
            found, _project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        except google.auth.exceptions.DefaultCredentialsError:
            raise CredentialsRefused(
                f"no {CREDENTIALS_PARAM} and no Application Default Credentials were found"
            ) from None
        return found
    info = _service_account_info(source)
    if info.get("type", "service_account") != "service_account":
        raise CredentialsRefused(f"{CREDENTIALS_PARAM} must be a service account key (type service_account)")
    try:
        account: Credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=[CLOUD_PLATFORM_SCOPE]
        )
    except (ValueError, KeyError) as exc:
        reason = redact(str(exc))[:MAX_REASON_CHARS]
        raise CredentialsRefused(
            f"{CREDENTIALS_PARAM} is not a usable service account key: {reason}"
        ) from None
    return account


class _TimedRequest:
    """google-auth's HTTP transport with a bounded wait for the token endpoint."""

    def __init__(self) -> None:
        import google.auth.transport.requests

        self._inner = google.auth.transport.requests.Request()

    def __call__(self, url: Any, method: Any = "GET", body: Any = None, headers: Any = None, timeout: Any = None, **kwargs: Any) -> Any:  # fmt: skip  # noqa: E501
        return self._inner(
            url, method=method, body=body, headers=headers, timeout=TOKEN_REQUEST_TIMEOUT_SECONDS, **kwargs
        )


def expires_at(expiry: datetime.datetime | None) -> float:
    """google-auth's expiry (naive UTC) as time.monotonic() seconds."""
    if expiry is None:
        return time.monotonic() + DEFAULT_TOKEN_LIFETIME_SECONDS
    utc_now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    return time.monotonic() + (expiry - utc_now).total_seconds()


def refreshed_token(source: str) -> Token:
    """A new access token for the credential (blocking: signs the JWT and calls the token endpoint)."""
    import google.auth.exceptions

    credentials = _credentials(source)
    try:
        credentials.refresh(_TimedRequest())  # type: ignore[no-untyped-call]
    except google.auth.exceptions.RefreshError as exc:
        if getattr(exc, "retryable", False):
            raise  # the token endpoint failed, not the credential: a 502
        reason = str(exc.args[0]) if exc.args else type(exc).__name__
        raise CredentialsRefused(
            f"Google refused the service account: {redact(reason)[:MAX_REASON_CHARS]}"
        ) from None
    if not credentials.token:
        raise CredentialsRefused("Google answered the token request without an access token")
    return Token(str(credentials.token), expires_at(credentials.expiry))


async def fetch_google_token(source: str) -> Token:
    """`refreshed_token` in a worker thread, so the event loop never waits on it."""
    return await asyncio.to_thread(refreshed_token, source)


class GoogleBearerAuthorizer:
    """Sets `Authorization: Bearer <access token>` on every call of a Vertex AI deployment."""

    def __init__(self, tokens: TokenCache[str] | None = None) -> None:
        self._tokens = tokens if tokens is not None else TokenCache(fetch_google_token)

    async def authorize(self, call: UpstreamCall, target: DeploymentTarget) -> UpstreamCall:
        """The call with the deployment's current access token."""
        try:
            token = await self._tokens.get(credential_source(target.extra_params), target.deployment_id)
        except CredentialsRefused as exc:
            raise AuthenticationError(
                f"credentials of deployment {target.deployment_id!r}: {exc.reason}",
                code="upstream_credentials_refused",
            ) from None
        return replace(call, headers={**call.headers, "Authorization": f"Bearer {token.value}"})
