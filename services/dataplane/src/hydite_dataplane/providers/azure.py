"""Azure OpenAI (`azure/`) and Azure AI Foundry models (`azure_ai/`): OpenAI's wire format behind
Azure's URLs and auth. Pure translation; the Entra ID bearer token is added by `azure_entra`.

Azure OpenAI (https://learn.microsoft.com/azure/ai-foundry/openai/reference and
.../openai/api-version-lifecycle), api_base `https://<resource>.openai.azure.com`:

- deployment layout: `{api_base}/openai/deployments/{deployment}{path}?api-version={api_version}`,
  the deployment being the model name after `azure/` and api_version the deployment's (else the
  latest GA data-plane inference version, `AZURE_API_VERSION`);
- v1 GA layout: `{api_base}/openai/v1{path}` without api-version, the deployment in the body's
  `model`, when api_version is "v1" or api_base already ends in /openai/v1. The Responses API is
  always called there (it has no per-deployment path);
- `api-key: <key>`, or an Entra ID bearer token (see `azure_entra`).

Azure AI Foundry models (https://learn.microsoft.com/azure/ai-foundry/model-inference/reference):
the model inference API, `{api_base}{path}?api-version=AZURE_AI_API_VERSION` with the model in the
body; a bare `https://<resource>.services.ai.azure.com` gets its `/models` path, other endpoints
(serverless `*.models.ai.azure.com`, `.../models`) are taken as given; `/openai/v1` bases use the v1
layout as above. A key goes as `Authorization: Bearer <key>`, which every one of these accepts.

A content-filter refusal (a 400, see `azure_errors`) is content_policy_violation in the "azure"
error format, so content-policy fallbacks apply; a `finish_reason: content_filter` answer, and the
`prompt_filter_results` / `content_filter_results` Azure adds, pass as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlsplit

from hydite_common.errors import InvalidRequestError
from hydite_common.openai_params import TRANSCRIPTION_PARAMS, TRANSLATION_PARAMS
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.base import OperationAdapter, StreamEventInfo, StreamTranslator
from hydite_dataplane.providers.messages_via_chat import messages_via_chat
from hydite_dataplane.providers.multipart import OpenAIMultipartOperation
from hydite_dataplane.providers.openai import (
    OpenAIChat,
    OpenAIImages,
    OpenAIOperation,
    OpenAIResponses,
    OpenAISpeech,
    openai_operations,
)
from hydite_dataplane.providers.responses_via_chat import responses_via_chat
from hydite_dataplane.request import InferenceRequest, TokenUsage
from hydite_dataplane.resources.ids import ResourceIdCodec
from hydite_dataplane.upstream.transport import UpstreamCall

AZURE_API_VERSION = "2024-10-21"
"""The latest GA data-plane inference api-version of Azure OpenAI's dated releases."""
AZURE_AI_API_VERSION = "2024-05-01-preview"
"""The api-version of the Azure AI model inference API (it has no GA dated release)."""
V1_API_VERSION = "v1"
V1_PATH = "/openai/v1"
FOUNDRY_HOST_SUFFIX = ".services.ai.azure.com"

AZURE_AUTH_PARAMS = frozenset({
    "tenant_id", "client_id", "client_secret", "azure_ad_token", "azure_scope", "azure_authority_host",
    "azure_username", "azure_password", "api_type",
})  # fmt: skip
"""litellm_params that configure how Azure is reached, never parameters of its API's body."""

UrlLayout = Callable[[DeploymentTarget, str], str]
"""The URL of an operation path (`/chat/completions`) for a deployment."""
KeyHeader = Callable[[str], tuple[str, str]]


def _api_base(target: DeploymentTarget) -> str:
    base = target.api_base.rstrip("/")
    if not base:
        raise InvalidRequestError(
            f"deployment {target.deployment_id!r} of provider {target.provider!r} has no api_base "
            "(its Azure resource endpoint)",
            code="deployment_misconfigured",
        )
    return base


def uses_v1_layout(target: DeploymentTarget) -> bool:
    """Whether the deployment calls the v1 GA path (no api-version)."""
    return target.api_version == V1_API_VERSION or target.api_base.rstrip("/").endswith(V1_PATH)


def azure_v1_url(target: DeploymentTarget, path: str) -> str:
    """`{api_base}/openai/v1{path}`, whether api_base names the resource or the v1 root."""
    base = _api_base(target)
    if base.endswith(V1_PATH):
        return base + path
    return base.removesuffix("/openai") + V1_PATH + path


def azure_openai_url(target: DeploymentTarget, path: str) -> str:
    """The deployment URL with its api-version, or the v1 URL."""
    if uses_v1_layout(target):
        return azure_v1_url(target, path)
    base = _api_base(target).removesuffix("/openai")
    deployment = quote(target.upstream_model, safe="")
    version = quote(target.api_version or AZURE_API_VERSION, safe="")
    return f"{base}/openai/deployments/{deployment}{path}?api-version={version}"


def azure_ai_url(target: DeploymentTarget, path: str) -> str:
    """The model inference URL with its api-version, or the v1 URL."""
    if uses_v1_layout(target):
        return azure_v1_url(target, path)
    base = _api_base(target)
    parts = urlsplit(base)
    if parts.path in ("", "/") and (parts.hostname or "").endswith(FOUNDRY_HOST_SUFFIX):
        base += "/models"
    version = quote(target.api_version or AZURE_AI_API_VERSION, safe="")
    return f"{base}{path}?api-version={version}"


def api_key_header(key: str) -> tuple[str, str]:
    """Azure OpenAI's key header."""
    return "api-key", key


def bearer_key_header(key: str) -> tuple[str, str]:
    """A key as a bearer credential (the model inference API and the v1 path take it)."""
    return "Authorization", f"Bearer {key}"


def uses_entra(target: DeploymentTarget) -> bool:
    """Whether the deployment authenticates with Entra ID rather than its key."""
    params = target.extra_params
    return any(params.get(name) for name in ("azure_ad_token", "client_secret", "tenant_id", "client_id"))


def key_headers(target: DeploymentTarget, key_header: KeyHeader) -> dict[str, str]:
    """The deployment's key in its header, unless Entra ID signs its calls (or it has no key)."""
    if not target.api_key or uses_entra(target):
        return {}
    name, value = key_header(target.api_key)
    return {name: value}


def without_auth(target: DeploymentTarget) -> DeploymentTarget:
    """The deployment as the OpenAI wire format should see it: no key to put in a header, no Azure
    auth settings to merge into the body."""
    params = {k: v for k, v in target.extra_params.items() if k not in AZURE_AUTH_PARAMS}
    return replace(target, api_key="", extra_params=params)


class AzureOperation:
    """An OpenAI wire operation at an Azure URL with Azure's auth header; everything else is the
    OpenAI operation's."""

    def __init__(
        self,
        inner: OpenAIOperation | OpenAIMultipartOperation,
        url_of: UrlLayout,
        key_header: KeyHeader,
    ) -> None:
        self.inner = inner
        self.supported_params = inner.supported_params
        self.stream_usage_marker = inner.stream_usage_marker
        self._url_of = url_of
        self._key_header = key_header

    def build_call(self, request: InferenceRequest, target: DeploymentTarget) -> UpstreamCall:
        """The OpenAI call, moved to Azure's URL; the key in Azure's header unless Entra ID signs it."""
        url = self._url_of(target, self.inner.path)
        call = self.inner.build_call(request, without_auth(target))
        headers = {**call.headers, **key_headers(target, self._key_header)}
        return UpstreamCall(call.method, url, headers, call.body)

    def usage_from_response(self, body: Mapping[str, Any]) -> TokenUsage:
        """The OpenAI operation's usage."""
        return self.inner.usage_from_response(body)

    def inspect_stream_event(self, event: bytes) -> StreamEventInfo:
        """As the OpenAI operation reads it."""
        return self.inner.inspect_stream_event(event)

    def translate_response(self, request: InferenceRequest, body: dict[str, Any]) -> dict[str, Any] | None:
        """As the OpenAI operation translates it."""
        return self.inner.translate_response(request, body)

    def stream_translator(self, request: InferenceRequest) -> StreamTranslator | None:
        """As the OpenAI operation translates it."""
        return self.inner.stream_translator(request)


class AzureMeteredOperation(AzureOperation):
    """An Azure operation billed partly by its request (speech, images, audio uploads)."""

    inner: OpenAISpeech | OpenAIImages | OpenAIMultipartOperation

    def __init__(
        self,
        inner: OpenAISpeech | OpenAIImages | OpenAIMultipartOperation,
        url_of: UrlLayout,
        key_header: KeyHeader,
    ) -> None:
        super().__init__(inner, url_of, key_header)
        self.inner = inner

    def usage_of_call(self, request: InferenceRequest, body: Mapping[str, Any] | None) -> TokenUsage:
        """As the OpenAI operation bills it."""
        return self.inner.usage_of_call(request, body)


class AzureResponses(AzureOperation):
    """The Responses API on the v1 path; the responses Azure stores are reached there too."""

    def __init__(self, inner: OpenAIResponses) -> None:
        super().__init__(inner, azure_v1_url, api_key_header)

    def stored_call(self, method: str, path: str, target: DeploymentTarget) -> UpstreamCall:
        """A call on a stored response (GET, DELETE, its input items) at the v1 path."""
        return UpstreamCall(method, azure_v1_url(target, path), key_headers(target, api_key_header), b"")


def azure_openai_operations(ids: ResourceIdCodec) -> dict[str, OperationAdapter]:
    """Every operation Azure OpenAI serves (it has no moderations or image variations)."""
    openai = openai_operations(ids)

    def at_deployment(inner: OpenAIOperation) -> AzureOperation:
        return AzureOperation(inner, azure_openai_url, api_key_header)

    chat = at_deployment(OpenAIChat())
    responses = openai["responses"]
    assert isinstance(responses, OpenAIResponses)
    return {
        "chat": chat,
        "completions": at_deployment(openai["completions"]),
        "embeddings": at_deployment(openai["embeddings"]),
        "images": AzureMeteredOperation(OpenAIImages(), azure_openai_url, api_key_header),
        "speech": AzureMeteredOperation(OpenAISpeech(), azure_openai_url, api_key_header),
        "responses": AzureResponses(responses),
        "transcriptions": AzureMeteredOperation(
            OpenAIMultipartOperation("/audio/transcriptions", TRANSCRIPTION_PARAMS),
            azure_openai_url,
            api_key_header,
        ),
        "translations": AzureMeteredOperation(
            OpenAIMultipartOperation("/audio/translations", TRANSLATION_PARAMS),
            azure_openai_url,
            api_key_header,
        ),
        "messages": messages_via_chat(chat),
    }


def azure_ai_operations(ids: ResourceIdCodec) -> dict[str, OperationAdapter]:
    """What the model inference API serves: chat and embeddings; responses and messages over chat."""
    openai = openai_operations(ids)
    chat = AzureOperation(OpenAIChat(), azure_ai_url, bearer_key_header)
    return {
        "chat": chat,
        "embeddings": AzureOperation(openai["embeddings"], azure_ai_url, bearer_key_header),
        "responses": responses_via_chat(chat),
        "messages": messages_via_chat(chat),
    }
