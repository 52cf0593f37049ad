"""The Entra ID authorizer: a service principal's token is fetched once for many calls and sent as
a bearer token; a token endpoint that fails is a 502, one that refuses the credential a 401, both
naming the deployment and neither showing the secret."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping

import orjson
import pytest

from hydite_common.errors import AuthenticationError, HyditeError, UpstreamError
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.azure_entra import EntraAuthorizer, token_from_answer
from hydite_dataplane.upstream.transport import CallTimeouts, UpstreamCall

TargetBuilder = Callable[..., DeploymentTarget]
SECRET = "entra-unit-secret-value"
PRINCIPAL = {"tenant_id": "tenant-1", "client_id": "client-1", "client_secret": SECRET}
CALL = UpstreamCall("POST", "https://contoso.openai.azure.com/x", {"Content-Type": "application/json"}, b"{}")


class Answer:
    """A token endpoint's answer."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status, self._body = status, body
        self.headers: Mapping[str, str] = {}
        self.content_type = "application/json"

    async def read(self) -> bytes:
        return self._body

    async def _chunks(self) -> AsyncIterator[bytes]:
        yield self._body

    def chunks(self) -> AsyncIterator[bytes]:
        return self._chunks()

    def release(self) -> None:
        return None


class TokenEndpoint:
    """A Transport answering token requests with `status` and `body`, or failing as unreachable."""

    def __init__(self, status: int = 200, body: object = None, unreachable: bool = False) -> None:
        self.status, self.unreachable = status, unreachable
        self.body = (
            body
            if body is not None
            else {"token_type": "Bearer", "expires_in": 3599, "access_token": "tok-1"}
        )
        self.calls: list[UpstreamCall] = []

    async def send(self, call: UpstreamCall, timeouts: CallTimeouts) -> Answer:
        self.calls.append(call)
        await asyncio.sleep(0.01)
        if self.unreachable:
            raise UpstreamError("could not reach the provider: connection refused")
        return Answer(self.status, orjson.dumps(self.body))


def _target(make_target: TargetBuilder, deployment_id: str = "dep-az", **params: str) -> DeploymentTarget:
    return make_target(deployment_id, provider="azure", extra_params=params or dict(PRINCIPAL))


async def test_many_calls_share_one_token_request(make_target: TargetBuilder) -> None:
    """Twenty calls at once and one later: one token request, every call with the bearer token."""
    endpoint = TokenEndpoint()
    authorizer = EntraAuthorizer(endpoint)
    target = _target(make_target)
    calls = await asyncio.gather(*(authorizer.authorize(CALL, target) for _ in range(20)))
    calls.append(await authorizer.authorize(CALL, target))
    assert {c.headers["Authorization"] for c in calls} == {"Bearer tok-1"}
    assert len(endpoint.calls) == 1 and endpoint.calls[0].url.endswith("/tenant-1/oauth2/v2.0/token")
    assert CALL.headers == {"Content-Type": "application/json"}


async def test_a_given_token_is_used_as_is_and_a_key_deployment_is_untouched(
    make_target: TargetBuilder,
) -> None:
    """azure_ad_token needs no token request; a deployment with only its key passes unchanged."""
    endpoint = TokenEndpoint()
    authorizer = EntraAuthorizer(endpoint)
    given = await authorizer.authorize(CALL, _target(make_target, azure_ad_token="eyJ.given"))
    assert given.headers["Authorization"] == "Bearer eyJ.given" and not endpoint.calls
    keyed = make_target(provider="azure", api_key="k")
    assert await authorizer.authorize(CALL, keyed) is CALL


@pytest.mark.parametrize(
    ("endpoint", "error", "status"),
    [
        (TokenEndpoint(status=500, body={"error": "temporarily_unavailable"}), UpstreamError, 502),
        (TokenEndpoint(unreachable=True), UpstreamError, 502),
        (TokenEndpoint(status=200, body={"token_type": "Bearer"}), UpstreamError, 502),
        (
            TokenEndpoint(status=401, body={"error": "invalid_client", "error_description": SECRET}),
            AuthenticationError,
            401,
        ),
    ],
)
async def test_a_failed_token_request_names_the_deployment(
    make_target: TargetBuilder, endpoint: TokenEndpoint, error: type[HyditeError], status: int
) -> None:
    """Unreachable, failing, tokenless or refusing: a gateway error naming the deployment, not the secret."""
    authorizer = EntraAuthorizer(endpoint)
    with pytest.raises(error) as raised:
        await authorizer.authorize(CALL, _target(make_target, "dep-broken"))
    assert raised.value.status == status and "dep-broken" in raised.value.message
    assert SECRET not in raised.value.message


async def test_an_incomplete_principal_names_what_is_missing(make_target: TargetBuilder) -> None:
    """tenant_id and client_id without client_secret: a 502 naming the deployment and the parameter."""
    authorizer = EntraAuthorizer(TokenEndpoint())
    with pytest.raises(UpstreamError) as raised:
        await authorizer.authorize(CALL, _target(make_target, "dep-half", tenant_id="t", client_id="c"))
    assert "dep-half" in raised.value.message and "client_secret" in raised.value.message


def test_a_token_lives_as_long_as_its_answer_says() -> None:
    """expires_in seconds from now; a string (as some clouds send it) counts too."""
    assert token_from_answer(200, b'{"access_token": "t", "expires_in": "120"}', 1000.0).expires_at == 1120.0
    assert token_from_answer(200, b'{"access_token": "t", "expires_in": 60}', 0.0).value == "t"
