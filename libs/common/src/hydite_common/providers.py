"""Providers a deployment may name, and how LiteLLM-style model strings split into them."""

from __future__ import annotations

from hydite_common.provider_table import ROWS_BY_NAME

# Providers the data plane has an adapter of their own for.
SUPPORTED_PROVIDERS = frozenset(
    {"openai", "mock", "cohere", "jina", "anthropic", "gemini", "vertex_ai", "azure", "azure_ai", "bedrock"}
)

OPENAI_WIRE_PROVIDERS: dict[str, str] = {name: row.api_base for name, row in ROWS_BY_NAME.items()}
"""Providers whose API speaks OpenAI's wire format with the differences their row in
`provider_table` lists; the API base a deployment of theirs calls when it names none."""

NATIVE_API_PROVIDERS: dict[str, str] = {}
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
