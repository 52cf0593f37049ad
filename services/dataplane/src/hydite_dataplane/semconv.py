"""The OpenTelemetry GenAI semantic-convention names of the gateway's operations and providers,
shared by the spans (`tracing`) and the exported GenAI metrics (`genai_metrics`)."""

from __future__ import annotations

OPERATION_NAMES = {
    "chat": "chat",
    "messages": "chat",
    "responses": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}
"""gen_ai.operation.name of an operation; one the conventions do not name keeps its own name."""

PROVIDER_NAMES = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "cohere": "cohere",
    "xai": "x_ai",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistral": "mistral_ai",
    "perplexity": "perplexity",
    "watsonx": "ibm.watsonx.ai",
}
"""gen_ai.provider.name of a provider; one the conventions do not name keeps its own name."""


def operation_name(operation: str) -> str:
    """gen_ai.operation.name of a gateway operation."""
    return OPERATION_NAMES.get(operation, operation)


def provider_name(provider: str) -> str:
    """gen_ai.provider.name of a gateway provider ("" when no deployment was reached)."""
    return PROVIDER_NAMES.get(provider, provider)
