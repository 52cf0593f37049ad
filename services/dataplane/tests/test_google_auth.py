"""The Google bearer authorizer of Vertex AI deployments: which credential a deployment names, key
files that cannot be used (a 401 naming the deployment, before any network call), a token's expiry
on the monotonic clock, and the header it sets. The token exchange itself runs against a fake
OAuth endpoint in tests/test_vertex_e2e.py."""

from __future__ import annotations

import asyncio
import datetime
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hydite_common.errors import AuthenticationError
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.upstream.credentials import Token, TokenCache
from hydite_dataplane.upstream.google_auth import (
    APPLICATION_DEFAULT,
    CredentialsRefused,
    GoogleBearerAuthorizer,
    credential_source,
    expires_at,
    refreshed_token,
)
from hydite_dataplane.upstream.transport import UpstreamCall

TargetBuilder = Callable[..., DeploymentTarget]


def test_a_deployment_names_its_credential_as_one_hashable_string() -> None:
    """A JSON object and the same JSON as a string of any key order share one cache key; no
    credential means Application Default Credentials."""
    as_object = {"type": "service_account", "client_email": "a@p.iam.gserviceaccount.com"}
    assert credential_source({"vertex_credentials": as_object}) == credential_source(
        {"vertex_credentials": {"client_email": "a@p.iam.gserviceaccount.com", "type": "service_account"}}
    )
    assert credential_source({"vertex_credentials": " /etc/sa.json\n"}) == "/etc/sa.json"
    assert credential_source({}) == credential_source({"vertex_credentials": ""}) == APPLICATION_DEFAULT
    with pytest.raises(CredentialsRefused):
        credential_source({"vertex_credentials": 42})


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (json.dumps({"type": "authorized_user", "refresh_token": "r"}), "type service_account"),
        (json.dumps({"type": "service_account", "client_email": "a@b"}), "not a usable service account key"),
        ("/nonexistent/hydite-test/sa.json", "names a file that cannot be read"),
    ],
)
def test_unusable_key_files_are_refused_before_any_call(source: str, reason: str) -> None:
    """A key file that cannot sign an assertion is refused with why, never a traceback."""
    with pytest.raises(CredentialsRefused, match=reason):
        refreshed_token(source)


def test_a_key_file_path_is_read(tmp_path: Path) -> None:
    """vertex_credentials may name the key file; its fields are checked like inline JSON."""
    key_file = tmp_path / "sa.json"
    key_file.write_text(json.dumps({"type": "service_account", "client_email": "a@b"}), encoding="utf-8")
    with pytest.raises(CredentialsRefused, match="not a usable service account key"):
        refreshed_token(str(key_file))


def test_expiry_is_moved_to_the_monotonic_clock() -> None:
    """google-auth's naive-UTC expiry becomes time.monotonic() seconds; none means an hour."""
    in_ten_minutes = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(minutes=10)
    assert expires_at(in_ten_minutes) - time.monotonic() == pytest.approx(600, abs=2)
    assert expires_at(None) - time.monotonic() == pytest.approx(3600, abs=2)


def _authorize(authorizer: GoogleBearerAuthorizer, target: DeploymentTarget) -> UpstreamCall:
    call = UpstreamCall("POST", "https://example.test/v1/x", {"Content-Type": "application/json"}, b"{}")
    return asyncio.run(authorizer.authorize(call, target))


def test_the_token_goes_in_a_bearer_header(make_target: TargetBuilder) -> None:
    """The cached token of the deployment's credential is sent as `Authorization: Bearer`."""
    seen: list[str] = []

    async def fetch(source: str) -> Token:
        seen.append(source)
        return Token("ya29.test-token", time.monotonic() + 3600)

    target = make_target("dep-v", provider="vertex_ai", extra_params={"vertex_credentials": "/keys/sa.json"})
    call = _authorize(GoogleBearerAuthorizer(TokenCache(fetch)), target)
    assert call.headers == {"Content-Type": "application/json", "Authorization": "Bearer ya29.test-token"}
    assert seen == ["/keys/sa.json"]


def test_a_refused_credential_is_a_401_naming_the_deployment(make_target: TargetBuilder) -> None:
    """The identity provider's refusal reaches the client as a 401 that says which deployment."""

    async def fetch(source: str) -> Any:
        raise CredentialsRefused("Google refused the service account: invalid_grant")

    target = make_target("dep-refused", provider="vertex_ai", extra_params={"vertex_credentials": "{}"})
    with pytest.raises(AuthenticationError) as refused:
        _authorize(GoogleBearerAuthorizer(TokenCache(fetch)), target)
    assert refused.value.status == 401 and refused.value.code == "upstream_credentials_refused"
    assert "'dep-refused'" in refused.value.message and "invalid_grant" in refused.value.message
