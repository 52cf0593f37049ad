"""Prices from the genai-prices package, translated once into compiled prices.

genai-prices gives each model a set of prices per unit (per million tokens, per thousand requests,
per hour of audio, ...), each a flat price or tiers by prompt size, and a model may have several
such sets under constraints (from a start date, within a daily window). The standard prices are
taken; variants selected by a request's service tier or batch processing are not.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from functools import cache

from genai_prices import types as genai
from genai_prices.data_snapshot import find_provider_by_id, get_snapshot

from hydite_common.pricing.compiled import (
    ALWAYS,
    SECONDS_PER_DAY,
    CompiledPrice,
    Period,
    Rates,
    TieredRates,
)

SOURCE = "genai-prices"

PRICE_FIELDS: dict[str, tuple[str, float]] = {
    "input_mtok": ("input", 1e6),
    "output_mtok": ("output", 1e6),
    "cache_read_mtok": ("cache_read", 1e6),
    "cache_write_mtok": ("cache_write", 1e6),
    "input_audio_mtok": ("audio_input", 1e6),
    "output_audio_mtok": ("audio_output", 1e6),
    "output_reasoning_mtok": ("reasoning", 1e6),
    "input_mchars": ("per_input_character", 1e6),
    "audio_hours": ("per_audio_second", 3600),
    "input_audio_hours": ("per_audio_second", 3600),
    "requests_kcount": ("per_request", 1e3),
    "rerank_searches_kcount": ("per_search_unit", 1e3),
}
"""genai-prices price key -> (Rates field, units the price is per). Keys not listed (web searches,
document pages, 1-hour cache writes, ...) price units the gateway does not count."""

PriceValue = Decimal | genai.TieredPrices


def rates_of(values: dict[str, float]) -> Rates:
    """Rates from per-unit values by Rates field, each missing token rate taking the one it falls
    under (cache and audio input the input rate, audio and reasoning output the output rate)."""
    inp = values.get("input", 0.0)
    out = values.get("output", 0.0)
    return Rates(
        input=inp,
        output=out,
        cache_read=values.get("cache_read", inp),
        cache_write=values.get("cache_write", inp),
        audio_input=values.get("audio_input", inp),
        audio_output=values.get("audio_output", out),
        reasoning=values.get("reasoning", out),
        per_request=values.get("per_request", 0.0),
        per_input_character=values.get("per_input_character", 0.0),
        per_audio_second=values.get("per_audio_second", 0.0),
        per_search_unit=values.get("per_search_unit", 0.0),
        per_image=values.get("per_image", 0.0),
        per_image_pixel=values.get("per_image_pixel", 0.0),
    )


def _price_values(prices: genai.ModelPrice) -> dict[str, PriceValue]:
    return {
        key: value
        for key, value in vars(prices).items()
        if key in PRICE_FIELDS and isinstance(value, Decimal | genai.TieredPrices)
    }


def _at_threshold(value: PriceValue, threshold: int) -> Decimal:
    """The price that applies to a prompt just above threshold (0: the base price)."""
    if isinstance(value, Decimal):
        return value
    price = value.base
    for tier in value.tiers:
        if tier.start <= threshold and threshold > 0:
            price = tier.price
    return price


def tiered_rates(prices: genai.ModelPrice) -> TieredRates:
    """One set of genai-prices prices as rates by prompt size."""
    values = _price_values(prices)
    thresholds = sorted(
        {tier.start for v in values.values() if isinstance(v, genai.TieredPrices) for tier in v.tiers}
    )

    def at(threshold: int) -> Rates:
        fields: dict[str, float] = {}
        for key, value in values.items():
            name, per = PRICE_FIELDS[key]
            fields.setdefault(name, float(_at_threshold(value, threshold)) / per)
        return rates_of(fields)

    return TieredRates(at(0), tuple((t, at(t)) for t in thresholds if t > 0))


def _seconds_of_day(moment: dt.time) -> int:
    if moment.tzinfo is not None:
        offset = moment.utcoffset() or dt.timedelta()
        return int(
            (moment.hour * 3600 + moment.minute * 60 + moment.second - offset.total_seconds())
            % SECONDS_PER_DAY
        )
    return moment.hour * 3600 + moment.minute * 60 + moment.second


def period_of(constraint: genai.StartDateConstraint | genai.TimeOfDateConstraint | None) -> Period:
    """When a genai-prices constraint applies (None: always)."""
    if isinstance(constraint, genai.StartDateConstraint):
        return Period(starts_at=float(calendar.timegm(constraint.start_date.timetuple())))
    if isinstance(constraint, genai.TimeOfDateConstraint):
        return Period(
            day_start=_seconds_of_day(constraint.start_time), day_end=_seconds_of_day(constraint.end_time)
        )
    return ALWAYS


def compiled(model: genai.ModelInfo) -> CompiledPrice:
    """A genai-prices model's standard prices, compiled: the last constraint that holds wins, and
    the first set applies when none does (genai-prices' own rule)."""
    if isinstance(model.prices, genai.ModelPrice):
        return CompiledPrice(SOURCE, default=tiered_rates(model.prices), model=model.id)
    conditional = model.prices
    periods = tuple((period_of(c.constraint), tiered_rates(c.prices)) for c in reversed(conditional))
    if len(periods) == 1 and periods[0][0] is ALWAYS:
        return CompiledPrice(SOURCE, default=periods[0][1], model=model.id)
    return CompiledPrice(SOURCE, default=tiered_rates(conditional[0].prices), periods=periods, model=model.id)


def _candidates(model: str) -> Iterable[str]:
    yield model
    if "/" in model:
        yield model.rsplit("/", 1)[1]


@cache
def _providers() -> list[genai.Provider]:
    return get_snapshot().providers


def genai_model(provider_id: str, model: str) -> genai.ModelInfo | None:
    """The genai-prices model a provider's model name matches (its aliases, dated names and, for
    providers that resell others' models, those providers' models too), else None."""
    providers = _providers()
    provider = find_provider_by_id(providers, provider_id)
    if provider is None:
        return None
    for candidate in _candidates(model):
        found = provider.find_model(candidate, all_providers=providers)
        if found is not None:
            return found
    return None


def genai_price(provider_id: str, model: str) -> CompiledPrice | None:
    """The compiled genai-prices price of a model, None when genai-prices does not know it."""
    found = genai_model(provider_id, model)
    return compiled(found) if found is not None else None


def context_window(provider_id: str, model: str) -> int | None:
    """The model's context window as genai-prices states it."""
    found = genai_model(provider_id, model)
    return found.context_window if found is not None else None
