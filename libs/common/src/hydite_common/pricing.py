"""Price per token of known models and the cost of a request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TokenPrice:
    """USD per input and per output token."""

    input_per_token: float
    output_per_token: float
    cached_input_per_token: float | None = None


def _per_million(inp: float, out: float, cached: float | None = None) -> TokenPrice:
    return TokenPrice(inp / 1e6, out / 1e6, cached / 1e6 if cached is not None else None)


# Public list prices (USD per 1M tokens); a deployment's own model_info prices win.
BUILTIN_PRICES: dict[str, TokenPrice] = {
    "gpt-4o": _per_million(2.50, 10.00, 1.25),
    "gpt-4o-mini": _per_million(0.15, 0.60, 0.075),
    "gpt-4.1": _per_million(2.00, 8.00, 0.50),
    "gpt-4.1-mini": _per_million(0.40, 1.60, 0.10),
    "gpt-4.1-nano": _per_million(0.10, 0.40, 0.025),
    "o3-mini": _per_million(1.10, 4.40, 0.55),
    "text-embedding-3-small": _per_million(0.02, 0.0),
    "text-embedding-3-large": _per_million(0.13, 0.0),
    "claude-sonnet-4-5": _per_million(3.00, 15.00, 0.30),
    "claude-haiku-4-5": _per_million(1.00, 5.00, 0.10),
    "gemini-2.5-flash": _per_million(0.30, 2.50, 0.075),
    "gemini-2.5-pro": _per_million(1.25, 10.00, 0.31),
    "deepseek-chat": _per_million(0.27, 1.10, 0.07),
}

FREE = TokenPrice(0.0, 0.0)


def builtin_price(upstream_model: str) -> TokenPrice:
    """Price of a model by its provider name ('openai/gpt-4o' and 'gpt-4o' alike); 0 if unknown."""
    name = upstream_model.rsplit("/", 1)[-1]
    return BUILTIN_PRICES.get(name, FREE)


def cost_of(price: TokenPrice, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
    """USD cost of one request; cached prompt tokens are billed at the cached rate when known."""
    cached = min(cached_tokens, prompt_tokens) if price.cached_input_per_token is not None else 0
    cached_rate = price.cached_input_per_token or 0.0
    return (
        (prompt_tokens - cached) * price.input_per_token
        + cached * cached_rate
        + completion_tokens * price.output_per_token
    )
