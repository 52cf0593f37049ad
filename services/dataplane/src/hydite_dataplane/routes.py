"""The route table, as data: every public path, its operation, auth class and wire format.

Each inference path answers with and without /v1; chat, completions and embeddings
also answer under /engines/{model}/... and Azure's /openai/deployments/{model}/....
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


INFERENCE_OPERATIONS: dict[str, tuple[str, bool]] = {
    "chat": ("/chat/completions", True),
}


def inference_routes() -> list[Route]:
    """Every inference route of every operation."""
    return [
        Route("POST", path, operation, "inference")
        for operation, (base, model_in_path) in INFERENCE_OPERATIONS.items()
        for path in _inference_paths(base, model_in_path=model_in_path)
    ]


ROUTES: tuple[Route, ...] = (
    *inference_routes(),
    Route("GET", "/health/liveliness", "liveliness", "public"),
    Route("GET", "/health/liveness", "liveliness", "public"),
    Route("GET", "/health/readiness", "readiness", "public"),
)
