"""Provider registry: for each provider, its transport and its adapter per operation."""

from __future__ import annotations

from dataclasses import dataclass

from hydite_common.providers import SUPPORTED_PROVIDERS
from hydite_dataplane.http_client import HttpClient
from hydite_dataplane.providers.base import OperationAdapter
from hydite_dataplane.providers.mock import MockTransport
from hydite_dataplane.providers.multipart import (
    IMAGE_EDIT_PARAMS,
    IMAGE_VARIATION_PARAMS,
    TRANSCRIPTION_PARAMS,
    TRANSLATION_PARAMS,
    OpenAIMultipartOperation,
)
from hydite_dataplane.providers.openai import GATEWAY_FIELDS, OpenAIChat, openai_operations
from hydite_dataplane.providers.rerank import CohereRerank, JinaRerank
from hydite_dataplane.providers.responses_via_chat import ResponsesViaChat
from hydite_dataplane.resource_ids import ResourceIdCodec
from hydite_dataplane.upstream import HttpTransport, Transport


@dataclass(frozen=True, slots=True)
class Provider:
    """How to reach one provider and translate each operation it supports."""

    transport: Transport
    operations: dict[str, OperationAdapter]


def build_providers(client: HttpClient, ids: ResourceIdCodec) -> dict[str, Provider]:
    """Every provider the data plane can call, sharing one HTTP client."""
    http = HttpTransport(client)
    openai_wire: dict[str, OperationAdapter] = {
        **openai_operations(ids),
        "image_edits": OpenAIMultipartOperation("/images/edits", IMAGE_EDIT_PARAMS),
        "image_variations": OpenAIMultipartOperation("/images/variations", IMAGE_VARIATION_PARAMS),
        "transcriptions": OpenAIMultipartOperation("/audio/transcriptions", TRANSCRIPTION_PARAMS),
        "translations": OpenAIMultipartOperation("/audio/translations", TRANSLATION_PARAMS),
    }
    # The mock provider reads `mock_response`, which real providers never see.
    mock_fields = GATEWAY_FIELDS - {"mock_response"}
    mock_operations: dict[str, OperationAdapter] = {
        "chat": OpenAIChat(mock_fields),
        "responses": ResponsesViaChat(mock_fields),
    }
    providers = {
        "openai": Provider(http, openai_wire),
        "mock": Provider(MockTransport(), mock_operations),
        "cohere": Provider(http, {"rerank": CohereRerank()}),
        "jina": Provider(http, {"rerank": JinaRerank()}),
    }
    assert set(providers) == SUPPORTED_PROVIDERS, "control plane and data plane disagree on providers"
    return providers
