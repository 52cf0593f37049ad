"""Providers a deployment may name, and how LiteLLM-style model strings split into them."""

from __future__ import annotations

# Providers the data plane has an adapter for; the control plane refuses others.
SUPPORTED_PROVIDERS = frozenset({"openai", "mock", "cohere", "jina"})


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
