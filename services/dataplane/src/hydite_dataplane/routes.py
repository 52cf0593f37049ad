"""The route table, as data: every public path, its operation, auth class and wire format.

Each inference path answers with and without /v1; chat, completions and embeddings
also answer under /engines/{model}/... and Azure's /openai/deployments/{model}/....
Anthropic's Messages API (/v1/messages and its count_tokens) speaks Anthropic's wire format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AuthClass = Literal["inference", "public"]


@dataclass(frozen=True, slots=True)
class Route:
    """One method + path the data plane serves itself (everything else goes to the control plane)."""

    method: str
    path: str
    operation: str
    auth: AuthClass
    wire_format: str = "openai"


def _inference_paths(base: str, *, model_in_path: bool) -> list[str]:
    paths = [f"/v1{base}", base]
    if model_in_path:
        for prefix in ("/engines/{model}", "/openai/deployments/{model}"):
            paths += [f"/v1{prefix}{base}", f"{prefix}{base}"]
    return paths


@dataclass(frozen=True, slots=True)
class Operation:
    """One inference operation: its path, whether the model may sit in the path, whether it streams,
    and the body fields it cannot do without."""

    name: str
    path: str
    model_in_path: bool
    streams: bool
    required: tuple[str, ...]
    default_model: str | None = None
    binary_response: bool = False  # relayed chunk by chunk with the provider's content type
    multipart: bool = False  # the request is multipart/form-data (file uploads)
    wire_format: str = "openai"  # how its requests are decoded and its errors rendered


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("chat", "/chat/completions", True, True, ("messages",)),
        Operation("completions", "/completions", True, True, ("prompt",)),
        Operation("embeddings", "/embeddings", True, False, ("input",)),
        Operation("moderations", "/moderations", False, False, ("input",), "omni-moderation-latest"),
        Operation("responses", "/responses", False, True, ("input",)),
        Operation("rerank", "/rerank", False, False, ("query", "documents")),
        Operation("images", "/images/generations", False, False, ("prompt",), "dall-e-2"),
        Operation("speech", "/audio/speech", False, False, ("input", "voice"), binary_response=True),
        Operation("image_edits", "/images/edits", False, False, ("prompt",), "dall-e-2", multipart=True),
        Operation(
            "image_variations", "/images/variations", False, False, ("image",), "dall-e-2", multipart=True
        ),
        Operation("transcriptions", "/audio/transcriptions", False, False, ("file",), multipart=True),
        Operation("translations", "/audio/translations", False, False, ("file",), multipart=True),
        Operation("messages", "/messages", False, True, ("messages", "max_tokens"), wire_format="anthropic"),
    )
}


def inference_routes() -> list[Route]:
    """Every inference route of every operation."""
    return [
        Route("POST", path, op.name, "inference", op.wire_format)
        for op in OPERATIONS.values()
        for path in _inference_paths(op.path, model_in_path=op.model_in_path)
    ]


MODEL_ROUTES = (
    Route("GET", "/v1/models", "models.list", "inference"),
    Route("GET", "/models", "models.list", "inference"),
    Route("GET", "/v1/models/{model_id}", "models.retrieve", "inference"),
    Route("GET", "/models/{model_id}", "models.retrieve", "inference"),
    Route("GET", "/model/metrics", "models.metrics", "inference"),
    Route("GET", "/v1/model/metrics", "models.metrics", "inference"),
    Route("GET", "/utils/supported_openai_params", "utils.supported_params", "inference"),
    Route("GET", "/v1/utils/supported_openai_params", "utils.supported_params", "inference"),
    Route("POST", "/utils/token_counter", "utils.token_counter", "inference"),
    Route("POST", "/v1/utils/token_counter", "utils.token_counter", "inference"),
    Route("GET", "/health", "health.deployments", "inference"),
    *(
        Route(method, prefix + path, operation, "inference")
        for prefix in ("/v1", "")
        for method, path, operation in (
            ("GET", "/responses/{response_id}", "responses.retrieve"),
            ("DELETE", "/responses/{response_id}", "responses.delete"),
            ("GET", "/responses/{response_id}/input_items", "responses.input_items"),
        )
    ),
    Route("GET", "/health/services", "health.services", "inference"),
    Route("POST", "/v1/messages/count_tokens", "messages.count_tokens", "inference", "anthropic"),
    Route("POST", "/messages/count_tokens", "messages.count_tokens", "inference", "anthropic"),
)


ROUTES: tuple[Route, ...] = (
    *inference_routes(),
    *MODEL_ROUTES,
    Route("GET", "/health/liveliness", "liveliness", "public"),
    Route("GET", "/health/liveness", "liveliness", "public"),
    Route("GET", "/health/readiness", "readiness", "public"),
    Route("GET", "/health/readiness/details", "readiness", "public"),
    Route("GET", "/routes", "routes", "public"),
    Route("GET", "/openapi.json", "openapi", "public"),
    Route("GET", "/docs", "docs", "public"),
    Route("GET", "/metrics", "metrics", "public"),
)
