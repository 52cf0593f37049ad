"""Entra ID (Azure AD) bearer tokens for `azure/` and `azure_ai/` deployments.

A deployment authenticates with Entra ID when its litellm_params hold either
- `azure_ad_token`: a token used as it is, or
- `tenant_id`, `client_id` and `client_secret`: a service principal whose token comes from the
  OAuth 2.0 client-credentials grant, POST `{authority}/{tenant_id}/oauth2/v2.0/token` with scope
  `azure_scope` (default `ENTRA_SCOPE`). The authority is litellm_params `azure_authority_host`, else
  the `AZURE_AUTHORITY_HOST` environment variable (the Azure SDKs' own), else the public cloud's.

Each value may be LiteLLM's `os.environ/NAME`. One token per service principal is cached and
refreshed in the background (`TokenCache`). A token endpoint that cannot be reached or fails is a
502 naming the deployment; one that refuses the credential (400/401) is a 401 naming it. Neither
the secret nor the token ever appears in an error or a log line.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from hydite_common.errors import AuthenticationError, HyditeError, UpstreamError
from hydite_dataplane.config.decode import from_environment
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.azure import uses_entra
from hydite_dataplane.upstream.credentials import Token, TokenCache
from hydite_dataplane.upstream.transport import CallTimeouts, Transport, UpstreamCall

PUBLIC_AUTHORITY = "https://login.microsoftonline.com"
AUTHORITY_ENV = "AZURE_AUTHORITY_HOST"
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
TOKEN_TIMEOUTS = CallTimeouts(total=30.0)
DEFAULT_LIFETIME_SECONDS = 3600.0
MAX_TOKEN_RESPONSE_BYTES = 1 << 20
CLIENT_CREDENTIAL_PARAMS = ("tenant_id", "client_id", "client_secret")


@dataclass(frozen=True, slots=True)
class ClientCredential:
    """A service principal's client-credentials grant: what one cached token stands for."""

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str


class TokenEndpointFailed(Exception):
    """The token endpoint could not be reached or did not answer with a token (no secrets in it)."""


def _param(target: DeploymentTarget, name: str) -> str:
    value = target.extra_params.get(name)
    return from_environment(value).strip() if isinstance(value, str) else ""


def entra_credential(target: DeploymentTarget) -> str | ClientCredential | None:
    """A fixed token, a service principal, or None when the deployment uses its key."""
    if not uses_entra(target):
        return None
    token = _param(target, "azure_ad_token")
    if token:
        return token
    values = {name: _param(target, name) for name in CLIENT_CREDENTIAL_PARAMS}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise UpstreamError(
            f"deployment {target.deployment_id!r} has an incomplete Entra ID credential: "
            f"{', '.join(missing)} not set",
            code="upstream_credentials_unavailable",
        )
    authority = _param(target, "azure_authority_host") or os.environ.get(AUTHORITY_ENV) or PUBLIC_AUTHORITY
    tenant = quote(values["tenant_id"], safe="")
    return ClientCredential(
        token_url=f"{authority.rstrip('/')}/{tenant}/oauth2/v2.0/token",
        client_id=values["client_id"],
        client_secret=values["client_secret"],
        scope=_param(target, "azure_scope") or ENTRA_SCOPE,
    )


def token_request(credential: ClientCredential) -> UpstreamCall:
    """The client-credentials grant request."""
    form = {
        "grant_type": "client_credentials",
        "client_id": credential.client_id,
        "client_secret": credential.client_secret,
        "scope": credential.scope,
    }
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    return UpstreamCall("POST", credential.token_url, headers, urlencode(form).encode())


def token_from_answer(status: int, payload: bytes, now: float) -> Token:
    """The token of a token endpoint's answer (`now` is time.monotonic())."""
    try:
        answer: Any = orjson.loads(payload)
    except orjson.JSONDecodeError:
        answer = None
    if status in (400, 401):
        reason = answer.get("error") if isinstance(answer, dict) else None
        shown = reason if isinstance(reason, str) and reason.replace("_", "").isalnum() else "refused"
        raise AuthenticationError(
            f"Entra ID refused the client credentials ({shown[:64]})", code="upstream_authentication_error"
        )
    if status >= 400:
        raise TokenEndpointFailed(f"HTTP {status}")
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token:
        raise TokenEndpointFailed("no access_token")
    lifetime = answer.get("expires_in")
    try:
        seconds = float(lifetime) if lifetime is not None else DEFAULT_LIFETIME_SECONDS
    except (TypeError, ValueError):
        seconds = DEFAULT_LIFETIME_SECONDS
    return Token(token, now + max(seconds, 0.0))


class EntraAuthorizer:
    """A CallAuthorizer: `Authorization: Bearer <Entra token>` on every call of an Entra deployment."""

    def __init__(self, http: Transport) -> None:
        self._http = http
        self._tokens: TokenCache[ClientCredential] = TokenCache(self._fetch)

    async def _fetch(self, credential: ClientCredential) -> Token:
        try:
            answer = await self._http.send(token_request(credential), TOKEN_TIMEOUTS)
            try:
                payload = await answer.read()
            finally:
                answer.release()
        except HyditeError:
            raise TokenEndpointFailed("unreachable") from None
        return token_from_answer(answer.status, payload[:MAX_TOKEN_RESPONSE_BYTES], time.monotonic())

    async def authorize(self, call: UpstreamCall, target: DeploymentTarget) -> UpstreamCall:
        """The call with the deployment's bearer token; unchanged for a deployment using its key."""
        credential = entra_credential(target)
        if credential is None:
            return call
        if isinstance(credential, ClientCredential):
            try:
                token = (await self._tokens.get(credential, target.deployment_id)).value
            except AuthenticationError as refused:
                raise AuthenticationError(
                    f"deployment {target.deployment_id!r}: {refused.message}", code=refused.code
                ) from None
        else:
            token = credential
        return replace(call, headers={**call.headers, "Authorization": f"Bearer {token}"})
