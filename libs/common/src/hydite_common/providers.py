"""Providers a deployment may name, and how LiteLLM-style model strings split into them."""

from __future__ import annotations

# Providers the data plane has an adapter for; the control plane refuses others.
SUPPORTED_PROVIDERS = frozenset({"openai", "mock"})


def split_model(model: str, custom_provider: str | None = None) -> tuple[str, str]:
    """'openai/gpt-4o-mini' -> ('openai', 'gpt-4o-mini'); no prefix means OpenAI's wire format."""
    if custom_provider:
        return custom_provider, model.removeprefix(custom_provider + "/")
    provider, sep, name = model.partition("/")
    if sep and provider in SUPPORTED_PROVIDERS:
        return provider, name
    return "openai", model
