"""What each route operation takes and answers, for the OpenAPI document: OpenAI's component
schemas by name where OpenAI defines the operation, compact schemas for the rest.

Pure data; openapi/document.py joins it with the route table (routes.ROUTES).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

JSON = "application/json"
MULTIPART = "multipart/form-data"
SSE = "text/event-stream"


def ref(name: str) -> dict[str, str]:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


@dataclass(frozen=True, slots=True)
class OperationDoc:
    """One operation as the document shows it: summary, tag, request body schema and media type
    (None: no body), the schema of its answer and the media type of that answer."""

    summary: str
    tag: str
    request: dict[str, Any] | None = None
    request_type: str = JSON
    response: dict[str, Any] | None = None
    response_type: str = JSON
    query: tuple[str, ...] = ()
    """Query parameters it reads (all optional strings)."""


_ANTHROPIC_BLOCKS: dict[str, Any] = {
    "type": "array",
    "items": {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}},
}
_ANTHROPIC_MESSAGES: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["role", "content"],
        "properties": {
            "role": {"enum": ["user", "assistant"]},
            "content": {"anyOf": [{"type": "string"}, _ANTHROPIC_BLOCKS]},
        },
    },
}
_ANTHROPIC_SYSTEM: dict[str, Any] = {"anyOf": [{"type": "string"}, _ANTHROPIC_BLOCKS]}

GATEWAY_SCHEMAS: dict[str, dict[str, Any]] = {
    "hydite.RerankRequest": {
        "type": "object",
        "required": ["model", "query", "documents"],
        "properties": {
            "model": {"type": "string"},
            "query": {"type": "string"},
            "documents": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "object"}]}},
            "top_n": {"type": "integer", "minimum": 1},
            "return_documents": {"type": "boolean"},
        },
    },
    "hydite.RerankResponse": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "index": {"type": "integer"},
                        "relevance_score": {"type": "number"},
                        "document": {"type": "object"},
                    },
                },
            },
        },
    },
    "hydite.AnthropicMessagesRequest": {
        "type": "object",
        "description": "Anthropic's Messages API request (other Anthropic fields pass through).",
        "required": ["model", "messages", "max_tokens"],
        "properties": {
            "model": {"type": "string"},
            "max_tokens": {"type": "integer", "minimum": 1},
            "messages": _ANTHROPIC_MESSAGES,
            "system": _ANTHROPIC_SYSTEM,
            "stream": {"type": "boolean"},
            "temperature": {"type": "number"},
            "tools": {"type": "array", "items": {"type": "object"}},
            "thinking": {"type": "object"},
            "metadata": {"type": "object"},
        },
    },
    "hydite.AnthropicCountTokensRequest": {
        "type": "object",
        "required": ["model", "messages"],
        "properties": {
            "model": {"type": "string"},
            "messages": _ANTHROPIC_MESSAGES,
            "system": _ANTHROPIC_SYSTEM,
            "tools": {"type": "array", "items": {"type": "object"}},
        },
    },
    "hydite.AnthropicMessage": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "type": {"const": "message"},
            "role": {"const": "assistant"},
            "content": {"type": "array", "items": {"type": "object"}},
            "model": {"type": "string"},
            "stop_reason": {"type": ["string", "null"]},
            "usage": {"type": "object"},
        },
    },
    "hydite.AnthropicError": {
        "type": "object",
        "description": "An error in Anthropic's shape.",
        "required": ["type", "error"],
        "properties": {
            "type": {"const": "error"},
            "error": {
                "type": "object",
                "required": ["type", "message"],
                "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
            },
            "request_id": {"type": "string"},
        },
    },
    "hydite.TokenCounterRequest": {
        "type": "object",
        "required": ["model"],
        "properties": {
            "model": {"type": "string"},
            "messages": {"type": "array", "items": {"type": "object"}},
            "prompt": {"type": "string"},
        },
    },
    "hydite.TokenCounterResponse": {
        "type": "object",
        "properties": {
            "total_tokens": {"type": "integer"},
            "request_model": {"type": "string"},
            "model_used": {"type": "string"},
            "tokenizer_type": {"type": "string"},
        },
    },
    "hydite.HealthResponse": {
        "type": "object",
        "properties": {
            "healthy_endpoints": {"type": "array", "items": {"type": "object"}},
            "unhealthy_endpoints": {"type": "array", "items": {"type": "object"}},
            "healthy_count": {"type": "integer"},
            "unhealthy_count": {"type": "integer"},
        },
    },
    "hydite.RoutesResponse": {
        "type": "object",
        "properties": {
            "routes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["path", "methods", "name"],
                    "properties": {
                        "path": {"type": "string"},
                        "methods": {"type": "array", "items": {"type": "string"}},
                        "name": {"type": "string"},
                    },
                },
            }
        },
    },
    "hydite.Object": {"type": "object", "description": "A JSON object."},
}
"""Compact schemas of what OpenAI's spec does not describe (their names carry a `hydite.` prefix)."""

_OBJECT = ref("hydite.Object")

OPERATION_DOCS: dict[str, OperationDoc] = {
    "chat": OperationDoc(
        "Create a chat completion", "inference", ref("CreateChatCompletionRequest"),
        response=ref("CreateChatCompletionResponse"),
    ),
    "completions": OperationDoc(
        "Create a completion", "inference", ref("CreateCompletionRequest"),
        response=ref("CreateCompletionResponse"),
    ),
    "embeddings": OperationDoc(
        "Create embeddings", "inference", ref("CreateEmbeddingRequest"),
        response=ref("CreateEmbeddingResponse"),
    ),
    "moderations": OperationDoc(
        "Classify text or images for harm", "inference", ref("CreateModerationRequest"),
        response=ref("CreateModerationResponse"),
    ),
    "responses": OperationDoc(
        "Create a model response", "inference", ref("CreateResponse"), response=ref("Response")
    ),
    "rerank": OperationDoc(
        "Rerank documents (Cohere's shape)", "inference", ref("hydite.RerankRequest"),
        response=ref("hydite.RerankResponse"),
    ),
    "images": OperationDoc(
        "Create images", "inference", ref("CreateImageRequest"), response=ref("ImagesResponse")
    ),
    "speech": OperationDoc(
        "Turn text into speech", "inference", ref("CreateSpeechRequest"),
        response={"type": "string", "format": "binary"}, response_type="application/octet-stream",
    ),
    "image_edits": OperationDoc(
        "Edit an image", "inference", ref("CreateImageEditRequest"), MULTIPART, ref("ImagesResponse")
    ),
    "image_variations": OperationDoc(
        "Create variations of an image", "inference", ref("CreateImageVariationRequest"), MULTIPART,
        ref("ImagesResponse"),
    ),
    "transcriptions": OperationDoc(
        "Transcribe audio", "inference", ref("CreateTranscriptionRequest"), MULTIPART,
        ref("CreateTranscriptionResponseJson"),
    ),
    "translations": OperationDoc(
        "Translate audio into English", "inference", ref("CreateTranslationRequest"), MULTIPART,
        ref("CreateTranslationResponseJson"),
    ),
    "messages": OperationDoc(
        "Create a message (Anthropic's Messages API)", "anthropic", ref("hydite.AnthropicMessagesRequest"),
        response=ref("hydite.AnthropicMessage"),
    ),
    "messages.count_tokens": OperationDoc(
        "Count a message's tokens (Anthropic's shape)", "anthropic",
        ref("hydite.AnthropicCountTokensRequest"),
        response={"type": "object", "properties": {"input_tokens": {"type": "integer"}}},
    ),
    "models.list": OperationDoc(
        "The models this key may call", "models", response=ref("ListModelsResponse"),
        query=("include_model_access_groups", "only_model_access_groups"),
    ),
    "models.retrieve": OperationDoc("One model this key may call", "models", response=ref("Model")),
    "models.metrics": OperationDoc("Live latency and traffic per model", "models", response=_OBJECT),
    "utils.supported_params": OperationDoc(
        "The OpenAI parameters a model's provider takes", "models", response=_OBJECT, query=("model",)
    ),
    "utils.token_counter": OperationDoc(
        "Count a prompt's tokens the way its provider does", "models", ref("hydite.TokenCounterRequest"),
        response=ref("hydite.TokenCounterResponse"),
    ),
    "health.deployments": OperationDoc(
        "Call every deployment this key may use", "health", response=ref("hydite.HealthResponse"),
        query=("model",),
    ),
    "health.services": OperationDoc("Providers summarised from live traffic", "health", response=_OBJECT),
    "responses.retrieve": OperationDoc("A stored response", "inference", response=ref("Response")),
    "responses.delete": OperationDoc("Delete a stored response", "inference", response=_OBJECT),
    "responses.input_items": OperationDoc(
        "The input items of a stored response", "inference", response=ref("ResponseItemList")
    ),
    "liveliness": OperationDoc("Whether the process is alive", "health", response=_OBJECT),
    "readiness": OperationDoc("Whether the data plane holds its configuration", "health", response=_OBJECT),
    "routes": OperationDoc(
        "Every route, the data plane's and the control plane's", "meta", response=ref("hydite.RoutesResponse")
    ),
    "openapi": OperationDoc("This document", "meta", response=_OBJECT),
    "metrics": OperationDoc(
        "Prometheus metrics", "meta", response={"type": "string"}, response_type="text/plain",
    ),
    "docs": OperationDoc(
        "Swagger UI for this document (when EXPOSE_DOCS=true)", "meta",
        response={"type": "string"}, response_type="text/html",
    ),
}  # fmt: skip
"""Route operation -> how the document describes it (every operation of routes.ROUTES has one)."""

OPENAI_SCHEMAS = frozenset(
    str(schema["$ref"]).rsplit("/", 1)[1]
    for doc in OPERATION_DOCS.values()
    for schema in (doc.request, doc.response)
    if schema is not None and "$ref" in schema and not schema["$ref"].rsplit("/", 1)[1].startswith("hydite.")
) | {"ErrorResponse"}
"""The OpenAI component schemas the document names (vendored with everything they refer to)."""
