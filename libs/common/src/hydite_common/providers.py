"""Providers a deployment may name, and how LiteLLM-style model strings split into them."""

from __future__ import annotations

# Providers the data plane has an adapter of their own for.
SUPPORTED_PROVIDERS = frozenset({"openai", "mock", "cohere", "jina"})

OPENAI_WIRE_PROVIDERS: dict[str, str] = {
    "groq": "https://api.groq.com/openai/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "xai": "https://api.x.ai/v1",
    "together_ai": "https://api.together.xyz/v1",
    "fireworks_ai": "https://api.fireworks.ai/inference/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "perplexity": "https://api.perplexity.ai",
    "deepinfra": "https://api.deepinfra.com/v1/openai",
}
"""Providers whose API speaks OpenAI's wire format, served by the OpenAI adapter; the API base a
deployment of theirs calls when it names none."""

NATIVE_API_PROVIDERS: dict[str, str] = {
    "anthropic": "the Anthropic Messages API",
    "gemini": "the Google Gemini API",
    "vertex_ai": "Google Vertex AI",
    "bedrock": "Amazon Bedrock",
    "azure": "Azure OpenAI",
    "azure_ai": "Azure AI Foundry",
}
"""Providers with an API of their own that no adapter translates yet: a deployment of theirs is
stored and listed, and a call to it is refused with an error naming the adapter it needs."""

ACCEPTED_PROVIDERS = SUPPORTED_PROVIDERS | OPENAI_WIRE_PROVIDERS.keys() | NATIVE_API_PROVIDERS.keys()
"""What a deployment may name; the control plane refuses any other provider (a typo)."""


def split_model(model: str, custom_provider: str | None = None) -> tuple[str, str]:
    """'openai/gpt-4o-mini' -> ('openai', 'gpt-4o-mini'); no prefix means OpenAI's wire format.

    A prefix names the provider even when it is not supported, so the caller can refuse it;
    model names that contain '/' themselves go behind an explicit 'openai/' prefix.
    """
    if custom_provider:
        return custom_provider, model.removeprefix(custom_provider + "/")
    provider, sep, name = model.partition("/")
    if sep:
        return provider, name
    return "openai", model
