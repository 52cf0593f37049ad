"""Provider registry: for each provider, its transport, its adapter per operation and the wire
format of its error bodies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from hydite_common.errors import HyditeError, InvalidRequestError
from hydite_common.openai_params import (
    IMAGE_EDIT_PARAMS,
    IMAGE_VARIATION_PARAMS,
    TRANSCRIPTION_PARAMS,
    TRANSLATION_PARAMS,
)
from hydite_common.provider_table import ROWS_BY_NAME, ProviderRow
from hydite_common.providers import ACCEPTED_PROVIDERS, NATIVE_API_PROVIDERS
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.anthropic import anthropic_operations
from hydite_dataplane.providers.azure import azure_ai_operations, azure_openai_operations
from hydite_dataplane.providers.azure_entra import EntraAuthorizer
from hydite_dataplane.providers.base import OperationAdapter
from hydite_dataplane.providers.bedrock import BedrockSigner, bedrock_operations
from hydite_dataplane.providers.gemini import gemini_operations
from hydite_dataplane.providers.messages_via_chat import messages_via_chat
from hydite_dataplane.providers.mock import MockChat, MockTransport
from hydite_dataplane.providers.multipart import OpenAIMultipartOperation
from hydite_dataplane.providers.openai import OpenAIChat, openai_operations
from hydite_dataplane.providers.openai_compatible import compatible_operations
from hydite_dataplane.providers.rerank import CohereRerank, JinaRerank
from hydite_dataplane.providers.responses_via_chat import responses_via_chat
from hydite_dataplane.providers.vertex import (
    ANTHROPIC,
    publisher_of,
    vertex_anthropic_operations,
    vertex_gemini_operations,
)
from hydite_dataplane.resources.ids import ResourceIdCodec
from hydite_dataplane.upstream.credentials import CallAuthorizer
from hydite_dataplane.upstream.errors import deployment_credentials, error_from_upstream
from hydite_dataplane.upstream.google_auth import GoogleBearerAuthorizer
from hydite_dataplane.upstream.transport import CallTimeouts, Transport, UpstreamCall, UpstreamResponse


@dataclass(frozen=True, slots=True)
class Provider:
    """How to reach one provider and translate each operation it supports."""

    transport: Transport
    operations: dict[str, OperationAdapter]
    error_format: str = "openai"  # a key of upstream.errors.ERROR_BODY_PARSERS
    missing_adapter: str = ""
    """The API a provider speaks that no adapter translates yet (it has no operations)."""
    authorizer: CallAuthorizer | None = None
    """Finishes each built call with credentials that are not a fixed key (cloud tokens, signing)."""
    per_deployment: Callable[[DeploymentTarget], Provider] | None = None
    """For a provider serving several wire formats (Vertex AI: Gemini and Claude models), the
    provider entry that speaks a deployment's: its operations, error format and authorizer."""

    def for_deployment(self, target: DeploymentTarget) -> Provider:
        """The entry that calls target (this one, unless the wire format depends on the deployment)."""
        return self.per_deployment(target) if self.per_deployment is not None else self

    def send(
        self, call: UpstreamCall, target: DeploymentTarget, timeouts: CallTimeouts
    ) -> Awaitable[UpstreamResponse]:
        """The call, finished by the authorizer when the provider has one, sent to the provider
        (without an authorizer, the transport's own send: no extra coroutine per request)."""
        if self.authorizer is None:
            return self.transport.send(call, timeouts)
        return self._send_authorized(self.authorizer, call, target, timeouts)

    async def _send_authorized(
        self, authorizer: CallAuthorizer, call: UpstreamCall, target: DeploymentTarget, timeouts: CallTimeouts
    ) -> UpstreamResponse:
        return await self.transport.send(await authorizer.authorize(call, target), timeouts)

    async def answer(
        self, call: UpstreamCall, target: DeploymentTarget, timeouts: CallTimeouts
    ) -> tuple[UpstreamResponse, bytes]:
        """A call answered whole: the response and its body; an error status is raised as the
        gateway error `error_of` makes of it."""
        upstream = await self.send(call, target, timeouts)
        try:
            body = await upstream.read()
        finally:
            upstream.release()
        if upstream.status >= 400:
            raise self.error_of(upstream, body, target)
        return upstream, body

    def error_of(self, upstream: UpstreamResponse, body: bytes, target: DeploymentTarget) -> HyditeError:
        """The gateway error for the provider's error response, read in its wire format and
        redacted of target's credentials."""
        return error_from_upstream(
            upstream.status,
            body,
            upstream.headers,
            self.error_format,
            credentials=deployment_credentials(target),
        )

    def refusal(self, provider: str, operation: str) -> HyditeError:
        """Why a call of operation to this provider cannot be made."""
        if self.missing_adapter:
            return InvalidRequestError(
                f"provider {provider!r} needs an adapter for {self.missing_adapter}, which this gateway "
                "does not have yet",
                code="provider_adapter_missing",
            )
        return InvalidRequestError(f"provider {provider!r} does not support {operation}")


def vertex_ai_provider(http: Transport) -> Provider:
    """Vertex AI: Gemini's wire format and error bodies for Google's models, Anthropic's for
    Claude, one Google token cache for both."""
    authorizer = GoogleBearerAuthorizer()
    google = Provider(http, vertex_gemini_operations(), error_format="gemini", authorizer=authorizer)
    claude = Provider(http, vertex_anthropic_operations(), error_format="anthropic", authorizer=authorizer)
    return replace(google, per_deployment=lambda t: claude if publisher_of(t) == ANTHROPIC else google)


MODEL_CACHE_SIZE = 1024
"""Upstream model names remembered per row with model quirks (wildcard deployments name many)."""


def compatible_provider(http: Transport, row: ProviderRow) -> Provider:
    """An OpenAI-compatible row's provider. A row with per-model quirks has one entry per pattern,
    built once; a deployment's is found by its upstream model, matched once per model name."""
    base = Provider(http, compatible_operations(row), error_format=row.error_format)
    if not row.model_quirks:
        return base
    variants = {
        pattern: Provider(
            http, compatible_operations(row.for_pattern(pattern)), error_format=row.error_format
        )
        for pattern, _ in row.model_quirks
    }
    by_model: dict[str, Provider] = {}

    def for_model(target: DeploymentTarget) -> Provider:
        entry = by_model.get(target.upstream_model)
        if entry is None:
            entry = variants.get(row.model_pattern(target.upstream_model), base)
            if len(by_model) >= MODEL_CACHE_SIZE:
                by_model.clear()
            by_model[target.upstream_model] = entry
        return entry

    return replace(base, per_deployment=for_model)


def build_providers(http: Transport, ids: ResourceIdCodec) -> dict[str, Provider]:
    """Every provider the data plane can call, sharing one HTTP transport."""
    openai_wire: dict[str, OperationAdapter] = {
        **openai_operations(ids),
        "image_edits": OpenAIMultipartOperation("/images/edits", IMAGE_EDIT_PARAMS),
        "image_variations": OpenAIMultipartOperation("/images/variations", IMAGE_VARIATION_PARAMS),
        "transcriptions": OpenAIMultipartOperation("/audio/transcriptions", TRANSCRIPTION_PARAMS),
        "translations": OpenAIMultipartOperation("/audio/translations", TRANSLATION_PARAMS),
        "messages": messages_via_chat(OpenAIChat()),
    }
    mock_chat = MockChat()
    mock_operations: dict[str, OperationAdapter] = {
        "chat": mock_chat,
        "responses": responses_via_chat(mock_chat),
        "messages": messages_via_chat(mock_chat),
    }
    gemini = gemini_operations()
    gemini["messages"] = messages_via_chat(gemini["chat"])
    entra = EntraAuthorizer(http)
    providers = {
        **{name: compatible_provider(http, row) for name, row in ROWS_BY_NAME.items()},
        **{name: Provider(http, {}, missing_adapter=api) for name, api in NATIVE_API_PROVIDERS.items()},
        "openai": Provider(http, openai_wire),
        "mock": Provider(MockTransport(), mock_operations),
        "anthropic": Provider(http, anthropic_operations(), error_format="anthropic"),
        "gemini": Provider(http, gemini, error_format="gemini"),
        "bedrock": Provider(http, bedrock_operations(), error_format="bedrock", authorizer=BedrockSigner()),
        "azure": Provider(http, azure_openai_operations(ids), error_format="azure", authorizer=entra),
        "azure_ai": Provider(http, azure_ai_operations(ids), error_format="azure", authorizer=entra),
        "cohere": Provider(http, {"rerank": CohereRerank()}),
        "jina": Provider(http, {"rerank": JinaRerank()}),
        "vertex_ai": vertex_ai_provider(http),
    }
    assert set(providers) == ACCEPTED_PROVIDERS, "control plane and data plane disagree on providers"
    return providers
