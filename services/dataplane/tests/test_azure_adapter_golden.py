"""Golden tests of the Azure OpenAI and Azure AI Foundry adapters, one folder per direction under
golden/azure/, each case a pair of files ``<case>.in.json`` and ``<case>.out.json`` compared whole:

- request/: client body, stream flag and deployment -> the upstream call (method, URL, headers,
  body) in each URL layout (deployment + api-version, v1, Foundry model inference) and auth
  (api-key, bearer key, Entra ID, where the Entra token itself is added by the authorizer);
- errors/: an Azure error response -> the gateway error (a content-filter refusal is
  content_policy_violation, its message kept and redacted);
- token/: an Entra ID deployment -> the client-credentials token request.

The Azure sides follow Azure's REST references (data-plane inference 2024-10-21, the v1 API, the
model inference API 2024-05-01-preview) and the Microsoft identity platform's client-credentials flow.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson
import pytest

from hydite_common.errors import InvalidRequestError
from hydite_common.providers import ACCEPTED_PROVIDERS, NATIVE_API_PROVIDERS
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.azure import azure_ai_operations, azure_openai_operations
from hydite_dataplane.providers.azure_entra import ClientCredential, entra_credential, token_request
from hydite_dataplane.request import InferenceRequest
from hydite_dataplane.resources.ids import ResourceIdCodec
from hydite_dataplane.resources.stored import StoresObjects
from hydite_dataplane.upstream.errors import deployment_credentials, error_from_upstream

GOLDEN = Path(__file__).parent / "golden" / "azure"
RequestBuilder = Callable[..., InferenceRequest]
TargetBuilder = Callable[..., DeploymentTarget]
Json = dict[str, Any]
IDS = ResourceIdCodec("golden-resource-id-salt")
OPERATIONS = {"azure": azure_openai_operations(IDS), "azure_ai": azure_ai_operations(IDS)}

EXPECTED_CASES = {
    "request": {
        "deployment_base_with_openai_suffix", "deployment_chat_api_key",
        "deployment_default_api_version_stream", "deployment_name_quoted", "entra_client_credentials",
        "entra_with_key_set", "foundry_bare_resource",
        "foundry_entra", "foundry_models_endpoint", "foundry_serverless_endpoint", "foundry_v1", "images",
        "responses_on_v1", "speech", "v1_by_api_base", "v1_by_api_version",
    },
    "errors": {
        "access_denied", "content_filter_image", "content_filter_inner_only", "content_filter_prompt",
        "context_too_long", "deployment_not_found", "rate_limited",
    },
    "token": {"own_authority_and_scope", "public_cloud"},
}  # fmt: skip


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _cases(direction: str) -> list[str]:
    return sorted(EXPECTED_CASES[direction])


def _target(deployment: Json, make_target: TargetBuilder) -> DeploymentTarget:
    return make_target(f"dep-{deployment['provider']}", **deployment)


@pytest.mark.parametrize("direction", sorted(EXPECTED_CASES))
def test_golden_case_files_are_complete(direction: str) -> None:
    """Each direction holds exactly its expected cases, each with an input and an output file."""
    names = {p.name for p in (GOLDEN / direction).iterdir()}
    assert names == {f"{case}.{side}.json" for case in EXPECTED_CASES[direction] for side in ("in", "out")}


def upstream_call(case: Json, make_request: RequestBuilder, make_target: TargetBuilder) -> Json:
    """The upstream call the adapter builds for a request case."""
    target = _target(case["deployment"], make_target)
    adapter = OPERATIONS[target.provider][case["operation"]]
    request = make_request(case["body"], operation=case["operation"], stream=case["stream"])
    request.deployment = target
    call = adapter.build_call(request, target)
    return {"method": call.method, "url": call.url, "headers": call.headers, "body": orjson.loads(call.body)}


@pytest.mark.parametrize("case", _cases("request"))
def test_request_translation_matches_golden(
    case: str, make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """The client's request becomes exactly the recorded Azure call; no credential in the URL or
    the body, and the key in no header of an Entra ID deployment."""
    given = _load(GOLDEN / "request" / f"{case}.in.json")
    before = json.loads(json.dumps(given["body"]))
    actual = upstream_call(given, make_request, make_target)
    assert actual == _load(GOLDEN / "request" / f"{case}.out.json")
    target = _target(given["deployment"], make_target)
    for credential in deployment_credentials(target):
        assert credential not in actual["url"] and credential not in json.dumps(actual["body"])
    assert given["body"] == before, "build_call must not modify the client's body"


def gateway_error(case: Json) -> Json:
    """The gateway error for an Azure error response."""
    error = error_from_upstream(
        case["status"],
        orjson.dumps(case["body"]),
        case.get("headers", {}),
        "azure",
        credentials=case.get("credentials", []),
    )
    return {
        "status": error.status,
        "class": type(error).__name__,
        "body": error.to_body(),
        "headers": error.headers,
    }


@pytest.mark.parametrize("case", _cases("errors"))
def test_error_mapping_matches_golden(case: str) -> None:
    """An Azure error response becomes exactly the recorded gateway error."""
    given = _load(GOLDEN / "errors" / f"{case}.in.json")
    assert gateway_error(given) == _load(GOLDEN / "errors" / f"{case}.out.json")


@pytest.mark.parametrize("case", _cases("token"))
def test_token_request_matches_golden(
    case: str, make_target: TargetBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An Entra ID deployment's token request: the tenant's endpoint, the form of the grant."""
    monkeypatch.delenv("AZURE_AUTHORITY_HOST", raising=False)
    given = _load(GOLDEN / "token" / f"{case}.in.json")
    credential = entra_credential(_target(given["deployment"], make_target))
    assert isinstance(credential, ClientCredential)
    call = token_request(credential)
    form = {name: values[0] for name, values in parse_qs(call.body.decode(), strict_parsing=True).items()}
    actual = {"method": call.method, "url": call.url, "headers": call.headers, "form": form}
    assert actual == _load(GOLDEN / "token" / f"{case}.out.json")
    assert credential.client_secret not in repr(credential)


def test_the_providers_have_adapters(make_target: TargetBuilder) -> None:
    """azure and azure_ai are served, no longer refused as adapters this gateway lacks."""
    assert {"azure", "azure_ai"} <= ACCEPTED_PROVIDERS
    assert not {"azure", "azure_ai"} & NATIVE_API_PROVIDERS.keys()
    assert "moderations" not in OPERATIONS["azure"] and "chat" in OPERATIONS["azure_ai"]


def test_entra_secrets_are_redacted_credentials(make_target: TargetBuilder) -> None:
    """client_secret, azure_ad_token and azure_password are taken out of anything Azure says."""
    params = {"client_secret": "cs-value-1", "azure_ad_token": "adt-value-2", "azure_password": "pw-value-3"}
    target = make_target(provider="azure", extra_params={**params, "client_id": "visible-id"})
    assert set(deployment_credentials(target)) == set(params.values())


def test_an_environment_reference_is_resolved_where_the_token_is_read(
    make_target: TargetBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`os.environ/NAME` values come from the data plane's environment, like api_key's."""
    monkeypatch.setenv("GOLDEN_AZURE_SECRET", "from-the-environment")
    target = make_target(
        provider="azure",
        extra_params={"tenant_id": "t", "client_id": "c", "client_secret": "os.environ/GOLDEN_AZURE_SECRET"},
    )
    credential = entra_credential(target)
    assert isinstance(credential, ClientCredential) and credential.client_secret == "from-the-environment"
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://login.chinacloudapi.cn")
    credential = entra_credential(target)
    assert isinstance(credential, ClientCredential)
    assert credential.token_url == "https://login.chinacloudapi.cn/t/oauth2/v2.0/token"


def test_a_deployment_without_api_base_is_a_clear_error(
    make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """Azure has no default endpoint: a deployment without api_base is refused, naming it."""
    target = make_target("dep-nobase", provider="azure", upstream_model="gpt-4o", api_key="k")
    with pytest.raises(InvalidRequestError) as refused:
        OPERATIONS["azure"]["chat"].build_call(make_request({"messages": []}), target)
    assert "dep-nobase" in refused.value.message and refused.value.code == "deployment_misconfigured"


def test_stored_responses_are_reached_at_the_v1_path(make_target: TargetBuilder) -> None:
    """GET/DELETE of a stored response: the v1 path with the key header (none for Entra ID)."""
    responses = OPERATIONS["azure"]["responses"]
    assert isinstance(responses, StoresObjects)
    keyed = make_target(
        provider="azure", api_base="https://contoso.openai.azure.com", api_key="k", api_version="2024-10-21"
    )
    call = responses.stored_call("GET", "/responses/resp_1?include=x", keyed)
    assert (call.method, call.url, call.headers, call.body) == (
        "GET", "https://contoso.openai.azure.com/openai/v1/responses/resp_1?include=x", {"api-key": "k"}, b"",
    )  # fmt: skip
    entra = make_target(provider="azure", api_base="https://contoso.openai.azure.com", api_key="k",
                        extra_params={"azure_ad_token": "t"})  # fmt: skip
    assert responses.stored_call("DELETE", "/responses/resp_1", entra).headers == {}
    assert not isinstance(OPERATIONS["azure_ai"]["responses"], StoresObjects)
