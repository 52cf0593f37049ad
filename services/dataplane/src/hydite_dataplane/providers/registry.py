"""Provider registry: for each provider, its transport, its adapter per operation and the wire
format of its error bodies."""

from __future__ import annotations

from dataclasses import dataclass

from hydite_common.errors import HyditeError, InvalidRequestError
from hydite_common.providers import ACCEPTED_PROVIDERS, NATIVE_API_PROVIDERS, OPENAI_WIRE_PROVIDERS
from hydite_dataplane.providers.base import OperationAdapter
from hydite_dataplane.providers.mock import MockChat, MockTransport
from hydite_dataplane.providers.multipart import (
    IMAGE_EDIT_PARAMS,
    IMAGE_VARIATION_PARAMS,
    TRANSCRIPTION_PARAMS,
    TRANSLATION_PARAMS,
    OpenAIMultipartOperation,
)
from hydite_dataplane.providers.openai import openai_operations
from hydite_dataplane.providers.rerank import CohereRerank, JinaRerank
from hydite_dataplane.providers.responses_via_chat import ResponsesViaChat
from hydite_dataplane.resources.ids import ResourceIdCodec
from hydite_dataplane.upstream.transport import Transport


@dataclass(frozen=True, slots=True)
class Provider:
    """How to reach one provider and translate each operation it supports."""

    transport: Transport
    operations: dict[str, OperationAdapter]
    error_format: str = "openai"  # a key of upstream.errors.ERROR_BODY_PARSERS
    missing_adapter: str = ""
    """The API a provider speaks that no adapter translates yet (it has no operations)."""

    def refusal(self, provider: str, operation: str) -> HyditeError:
        """Why a call of operation to this provider cannot be made."""
        if self.missing_adapter:
            return InvalidRequestError(
                f"provider {provider!r} needs an adapter for {self.missing_adapter}, which this gateway "
                "does not have yet",
                code="provider_adapter_missing",
            )
        return InvalidRequestError(f"provider {provider!r} does not support {operation}")


def build_providers(http: Transport, ids: ResourceIdCodec) -> dict[str, Provider]:
    """Every provider the data plane can call, sharing one HTTP transport."""
    openai_wire: dict[str, OperationAdapter] = {
        **openai_operations(ids),
        "image_edits": OpenAIMultipartOperation("/images/edits", IMAGE_EDIT_PARAMS),
        "image_variations": OpenAIMultipartOperation("/images/variations", IMAGE_VARIATION_PARAMS),
        "transcriptions": OpenAIMultipartOperation("/audio/transcriptions", TRANSCRIPTION_PARAMS),
        "translations": OpenAIMultipartOperation("/audio/translations", TRANSLATION_PARAMS),
    }
    mock_chat = MockChat()
    mock_operations: dict[str, OperationAdapter] = {
        "chat": mock_chat,
        "responses": ResponsesViaChat(mock_chat),
    }
    providers = {
        **{name: Provider(http, openai_wire) for name in OPENAI_WIRE_PROVIDERS},
        **{name: Provider(http, {}, missing_adapter=api) for name, api in NATIVE_API_PROVIDERS.items()},
        "openai": Provider(http, openai_wire),
        "mock": Provider(MockTransport(), mock_operations),
        "cohere": Provider(http, {"rerank": CohereRerank()}),
        "jina": Provider(http, {"rerank": JinaRerank()}),
    }
    assert set(providers) == ACCEPTED_PROVIDERS, "control plane and data plane disagree on providers"
    return providers
