"""Which price a deployment is billed at, resolved once per (provider, model) and shared by the
data plane (which bills with it) and the control plane (which shows it in /model/info).

A deployment's own prices win: litellm_params' (source "deployment"), else model_info's
("model_info"), written LiteLLM's way and in the `currency` they name (USD when they name none).
Set, they are the whole price: rates they leave out are not taken from a table. Without them the
model's list price is looked up by provider and upstream model name, in genai-prices first and
then in LiteLLM's table; non-token rates genai-prices lacks (per image, per second, ...) are taken
from LiteLLM's entry of the same model. Both tables are in USD. A model neither knows is
"unknown": it costs 0 and its usage events say so.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from hydite_common.pricing import genai_source, litellm_source
from hydite_common.pricing.compiled import (
    DEFAULT_CURRENCY,
    UNKNOWN,
    UNPRICED,
    CompiledPrice,
    Rates,
    TieredRates,
)
from hydite_common.pricing.litellm_source import NO_LIMITS, ModelLimits, limits_of, litellm_table

DEPLOYMENT = "deployment"
MODEL_INFO = "model_info"
SOURCES = (DEPLOYMENT, MODEL_INFO, genai_source.SOURCE, litellm_source.SOURCE, UNKNOWN)
OWN_SOURCES = frozenset({DEPLOYMENT, MODEL_INFO})


@dataclass(frozen=True, slots=True)
class ProviderNames:
    """What the price tables call a Hydite provider ("" where a table has none of its models)."""

    genai: str
    litellm: str


PROVIDER_NAMES: dict[str, ProviderNames] = {
    "openai": ProviderNames("openai", "openai"),
    "azure": ProviderNames("azure", "azure"),
    "azure_ai": ProviderNames("azure", "azure_ai"),
    "anthropic": ProviderNames("anthropic", "anthropic"),
    "gemini": ProviderNames("google", "gemini"),
    "vertex_ai": ProviderNames("google", "vertex_ai"),
    "bedrock": ProviderNames("aws", "bedrock"),
    "deepseek": ProviderNames("deepseek", "deepseek"),
    "xai": ProviderNames("x-ai", "xai"),
    "groq": ProviderNames("groq", "groq"),
    "together_ai": ProviderNames("together", "together_ai"),
    "fireworks_ai": ProviderNames("fireworks", "fireworks_ai"),
    "openrouter": ProviderNames("openrouter", "openrouter"),
    "perplexity": ProviderNames("perplexity", "perplexity"),
    "deepinfra": ProviderNames("", "deepinfra"),
    "cohere": ProviderNames("cohere", "cohere"),
    "jina": ProviderNames("", "jina_ai"),
    "mistral": ProviderNames("mistral", "mistral"),
    "moonshot": ProviderNames("moonshotai", "moonshot"),
    "dashscope": ProviderNames("", "dashscope"),
    "zhipuai": ProviderNames("zhipuai", "bigmodel"),
    "zai": ProviderNames("zai", "zai"),
    "volcengine": ProviderNames("", "volcengine"),
    "cerebras": ProviderNames("cerebras", "cerebras"),
    "mock": ProviderNames("", ""),
}
"""Hydite provider -> genai-prices provider id and LiteLLM provider prefix; a provider not listed
is looked up under its own name in both."""


def provider_names(provider: str) -> ProviderNames:
    """The price tables' names of a provider."""
    return PROVIDER_NAMES.get(provider) or ProviderNames(provider, provider)


CURRENCY = "currency"
_CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")
_STRUCTURED_PRICES = ("tiered_pricing", "off_peak_pricing")


def is_price_setting(name: str) -> bool:
    """Whether a litellm_params or model_info name sets a price (never a provider parameter)."""
    return (
        name in litellm_source.PRICE_KEYS
        or name in _STRUCTURED_PRICES
        or name == CURRENCY
        or ("_above_" in name and litellm_source.is_tier_key(name))
    )


def price_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """The price settings among litellm_params or model_info."""
    return {name: value for name, value in values.items() if is_price_setting(name)}


def currency_of(settings: Mapping[str, Any]) -> str:
    """The currency a deployment's prices are in (ISO 4217 code; USD when unnamed or unreadable)."""
    value = settings.get(CURRENCY)
    if isinstance(value, str) and _CURRENCY_CODE.match(value.upper()):
        return value.upper()
    return DEFAULT_CURRENCY


@dataclass(frozen=True, slots=True)
class ResolvedPrice:
    """A deployment's compiled price and what LiteLLM's table says of its model."""

    price: CompiledPrice
    limits: ModelLimits = NO_LIMITS


def _with_unit_rates(
    price: CompiledPrice, entry: Mapping[str, Any], images: Mapping[str, float]
) -> CompiledPrice:
    """genai-prices' price with the non-token rates it leaves at 0 taken from LiteLLM's entry."""
    extra = litellm_source.compiled(entry, litellm_source.SOURCE, images=images).default.base
    names = ("per_input_character", "per_audio_second", "per_search_unit", "per_image", "per_image_pixel")

    def filled(rates: Rates) -> Rates:
        changes: dict[str, Any] = {n: getattr(extra, n) for n in names if not getattr(rates, n)}
        if not rates.image_prices and extra.image_prices:
            changes["image_prices"] = extra.image_prices
        return dataclasses.replace(rates, **changes) if changes else rates

    def tiered(rates: TieredRates) -> TieredRates:
        return TieredRates(filled(rates.base), tuple((t, filled(r)) for t, r in rates.tiers))

    return dataclasses.replace(
        price,
        default=tiered(price.default),
        periods=tuple((period, tiered(rates)) for period, rates in price.periods),
    )


@lru_cache(maxsize=8192)
def list_price(provider: str, upstream_model: str) -> ResolvedPrice:
    """The list price of a provider's model (cached: a snapshot names few models many times)."""
    names = provider_names(provider)
    table = litellm_table()
    found = table.entry(names.litellm, upstream_model) if names.litellm else None
    entry = found[1] if found is not None else {}
    images = table.image_prices(names.litellm, upstream_model) if names.litellm else {}
    limits = limits_of(entry) if found is not None else NO_LIMITS
    if names.genai:
        genai_price = genai_source.genai_price(names.genai, upstream_model)
        if genai_price is not None:
            if found is not None or images:
                genai_price = _with_unit_rates(genai_price, entry, images)
            if limits.max_input_tokens is None:
                window = genai_source.context_window(names.genai, upstream_model)
                limits = dataclasses.replace(limits, max_input_tokens=window)
            return ResolvedPrice(genai_price, limits)
    if (found is not None and litellm_source.has_prices(entry)) or images:
        return ResolvedPrice(
            litellm_source.compiled(
                entry, litellm_source.SOURCE, images=images, model=found[0] if found else upstream_model
            ),
            limits,
        )
    return ResolvedPrice(UNPRICED, limits)


def resolve_price(
    provider: str,
    upstream_model: str,
    litellm_params: Mapping[str, Any],
    model_info: Mapping[str, Any],
) -> ResolvedPrice:
    """The price a deployment is billed at, from its own price settings (litellm_params' and
    model_info's, as `price_settings` finds them) or its model's list price."""
    listed = list_price(provider, upstream_model)
    own = price_settings(litellm_params) if litellm_params else litellm_params
    info = price_settings(model_info) if model_info else model_info
    if not own and not info:
        return listed
    if not (litellm_source.has_prices(own) or litellm_source.has_prices(info)):
        return listed
    settings = {**info, **own}
    source = DEPLOYMENT if litellm_source.has_prices(own) else MODEL_INFO
    price = litellm_source.compiled(settings, source, currency=currency_of(settings))
    return ResolvedPrice(price, listed.limits)


def model_info_fields(resolved: ResolvedPrice, at: float) -> dict[str, Any]:
    """The resolved price and limits as LiteLLM's model_info names them, at epoch second `at`
    (the base tier, and each tier above it by its threshold), with `hydite_price_source` and
    `currency`; limits the table does not know are left out."""
    tiered = resolved.price.rates_at(at)
    base = tiered.base
    fields: dict[str, Any] = {
        "input_cost_per_token": base.input,
        "output_cost_per_token": base.output,
        "cache_read_input_token_cost": base.cache_read,
        "cache_creation_input_token_cost": base.cache_write,
    }
    optional = {
        "input_cost_per_audio_token": base.audio_input if base.audio_input != base.input else 0.0,
        "output_cost_per_audio_token": base.audio_output if base.audio_output != base.output else 0.0,
        "output_cost_per_reasoning_token": base.reasoning if base.reasoning != base.output else 0.0,
        "input_cost_per_character": base.per_input_character,
        "input_cost_per_second": base.per_audio_second,
        "input_cost_per_query": base.per_search_unit,
        "output_cost_per_image": base.per_image,
        "input_cost_per_pixel": base.per_image_pixel,
        "cost_per_request": base.per_request,
    }
    fields.update({name: value for name, value in optional.items() if value})
    for threshold, rates in tiered.tiers:
        suffix = f"_above_{threshold // 1000}k_tokens"
        fields["input_cost_per_token" + suffix] = rates.input
        fields["output_cost_per_token" + suffix] = rates.output
        fields["cache_read_input_token_cost" + suffix] = rates.cache_read
    limits = resolved.limits
    for name in ("max_tokens", "max_input_tokens", "max_output_tokens"):
        value = getattr(limits, name)
        if value is not None:
            fields[name] = value
    if limits.litellm_provider:
        fields["litellm_provider"] = limits.litellm_provider
    fields["hydite_price_source"] = resolved.price.source
    fields["currency"] = resolved.price.currency
    return fields
