"""Provider registry: for each provider, its transport, its adapter per operation and the wire
format of its error bodies."""

from __future__ import annotations

from dataclasses import dataclass

from hydite_common.providers import SUPPORTED_PROVIDERS
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
        "openai": Provider(http, openai_wire),
        "mock": Provider(MockTransport(), mock_operations),
        "cohere": Provider(http, {"rerank": CohereRerank()}),
        "jina": Provider(http, {"rerank": JinaRerank()}),
    }
    assert set(providers) == SUPPORTED_PROVIDERS, "control plane and data plane disagree on providers"
    return providers
