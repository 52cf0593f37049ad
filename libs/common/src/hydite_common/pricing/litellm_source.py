"""LiteLLM's model table (vendored as data, see data/README.md): context windows and output
limits of models, prices where genai-prices has none, and the reading of prices written LiteLLM's
way, which is also how a deployment sets its own (`input_cost_per_token`, ...).

Prices per token may come with tiers (`input_cost_per_token_above_200k_tokens`, or
`tiered_pricing` ranges of prompt size) and off-peak windows (`off_peak_pricing`); per-image
prices by quality and size are entries of their own (`hd/1024-x-1024/dall-e-3`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

import orjson

from hydite_common.pricing.compiled import (
    ALL_WEEKDAYS,
    DEFAULT_CURRENCY,
    NO_IMAGE_PRICES,
    SECONDS_PER_DAY,
    CompiledPrice,
    Period,
    Rates,
    TieredRates,
    image_price_key,
)
from hydite_common.pricing.genai_source import rates_of

SOURCE = "litellm"
TABLE_FILE = "litellm_model_prices.json"

PRICE_KEYS: dict[str, str] = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cache_read",
    "cache_creation_input_token_cost": "cache_write",
    "input_cost_per_audio_token": "audio_input",
    "output_cost_per_audio_token": "audio_output",
    "output_cost_per_reasoning_token": "reasoning",
    "input_cost_per_character": "per_input_character",
    "input_cost_per_second": "per_audio_second",
    "output_cost_per_second": "per_audio_second",
    "input_cost_per_query": "per_search_unit",
    "output_cost_per_image": "per_image",
    "input_cost_per_image": "per_image",
    "input_cost_per_pixel": "per_image_pixel",
    "cost_per_request": "per_request",
}
"""LiteLLM price name -> Rates field. Seconds are seconds of audio (transcription); where both
input and output seconds are named, the input's applies (LiteLLM's whisper entries name one
rate twice)."""

_TIER_KEY = re.compile(
    r"^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost|"
    r"cache_creation_input_token_cost|input_cost_per_audio_token)_above_(\d+)k_tokens$"
)
_IMAGE_KEY = re.compile(
    r"^(?:(?P<prefix>[a-z_]+)/)?(?:(?P<quality>[a-z]+)/)?(?P<w>\d+)-x-(?P<h>\d+)/(?P<model>.+)$"
)
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _fields(entry: Mapping[str, Any]) -> dict[str, float]:
    fields: dict[str, float] = {}
    for key, name in PRICE_KEYS.items():
        value = _number(entry.get(key))
        if value is not None:
            fields.setdefault(name, value)
    return fields


def is_tier_key(name: str) -> bool:
    """Whether a name is a tier price (`input_cost_per_token_above_200k_tokens`, ...)."""
    return _TIER_KEY.match(name) is not None


def has_prices(entry: Mapping[str, Any]) -> bool:
    """Whether an entry (or a deployment's settings) names any price."""
    return any(key in entry for key in PRICE_KEYS) or "tiered_pricing" in entry or _tier_keys(entry) != {}


def _tier_keys(entry: Mapping[str, Any]) -> dict[int, dict[str, float]]:
    tiers: dict[int, dict[str, float]] = {}
    for key, value in entry.items():
        match = _TIER_KEY.match(key)
        number = _number(value)
        if match is not None and number is not None:
            tiers.setdefault(int(match.group(2)) * 1000, {})[PRICE_KEYS[match.group(1)]] = number
    return tiers


def _tiered(fields: dict[str, float], entry: Mapping[str, Any], images: Mapping[str, float]) -> TieredRates:
    tiers = _tier_keys(entry)
    ranges = entry.get("tiered_pricing")
    if isinstance(ranges, list):
        for item in ranges:
            bounds = item.get("range") if isinstance(item, dict) else None
            if not (isinstance(bounds, list) and bounds and _number(bounds[0]) is not None):
                continue
            start = int(bounds[0])
            if start <= 0:
                fields = {**fields, **_fields(item)}
            else:
                tiers.setdefault(start, {}).update(_fields(item))

    def rates(values: dict[str, float]) -> Rates:
        built = rates_of(values)
        if images:
            return _with_images(built, images)
        return built

    base = rates(fields)
    levels: list[tuple[int, Rates]] = []
    merged = dict(fields)
    for threshold in sorted(tiers):
        merged = {**merged, **tiers[threshold]}
        levels.append((threshold, rates(merged)))
    return TieredRates(base, tuple(levels))


def _with_images(rates: Rates, images: Mapping[str, float]) -> Rates:
    return dataclasses.replace(rates, image_prices=MappingProxyType(dict(images)))


def _day_windows(hours: Any) -> Iterator[tuple[int, int]]:
    for text in hours if isinstance(hours, list) else [hours]:
        match = _HOURS.match(text) if isinstance(text, str) else None
        if match is None:
            continue
        start = int(match.group(1)) * 3600 + int(match.group(2)) * 60
        end = int(match.group(3)) * 3600 + int(match.group(4)) * 60
        yield start, end if end != 0 else SECONDS_PER_DAY


def _off_peak(
    fields: dict[str, float], entry: Mapping[str, Any], images: Mapping[str, float]
) -> tuple[tuple[Period, TieredRates], ...]:
    off_peak = entry.get("off_peak_pricing")
    if not isinstance(off_peak, dict):
        return ()
    rates = _tiered({**fields, **_fields(off_peak)}, {}, images)
    periods: list[tuple[Period, TieredRates]] = []
    windows = off_peak.get("windows")
    for window in windows if isinstance(windows, list) else []:
        if not isinstance(window, dict):
            continue
        days = window.get("weekdays")
        weekdays = (
            frozenset(d for d in days if isinstance(d, int) and 1 <= d <= 7)
            if isinstance(days, list)
            else ALL_WEEKDAYS
        )
        for start, end in _day_windows(window.get("hours_utc")):
            periods.append((Period(day_start=start, day_end=end, weekdays=weekdays or ALL_WEEKDAYS), rates))
    return tuple(periods)


def compiled(
    entry: Mapping[str, Any],
    source: str,
    *,
    images: Mapping[str, float] = NO_IMAGE_PRICES,
    currency: str = DEFAULT_CURRENCY,
    model: str = "",
) -> CompiledPrice:
    """Prices written LiteLLM's way (a table entry, or a deployment's own settings), compiled."""
    fields = _fields(entry)
    return CompiledPrice(
        source,
        currency,
        _tiered(fields, entry, images),
        _off_peak(fields, entry, images),
        model,
    )


@dataclass(frozen=True, slots=True)
class LitellmTable:
    """The vendored table, with the per-image prices gathered by (provider prefix, model)."""

    entries: Mapping[str, Mapping[str, Any]]
    images: Mapping[tuple[str, str], Mapping[str, float]]

    def entry(self, prefix: str, model: str) -> tuple[str, Mapping[str, Any]] | None:
        """The entry a provider's model name has: `prefix/model`, else `model` when it is that
        provider's, then the same with a date suffix taken off; aliases followed."""
        for candidate in _name_variants(model):
            for key in (f"{prefix}/{candidate}", candidate):
                found = self.entries.get(key)
                if found is None:
                    continue
                target = found.get("alias_of")
                if isinstance(target, str) and target in self.entries:
                    key, found = target, self.entries[target]
                if key != candidate or _provider_matches(found, prefix):
                    return key, found
        return None

    def image_prices(self, prefix: str, model: str) -> Mapping[str, float]:
        """Per-image prices of a model by quality and size ("hd/1024x1024"; "1024x1024")."""
        for candidate in _name_variants(model):
            for key in ((prefix, candidate), ("", candidate)):
                found = self.images.get(key)
                if found:
                    return found
        return NO_IMAGE_PRICES


def _provider_matches(entry: Mapping[str, Any], prefix: str) -> bool:
    provider = entry.get("litellm_provider")
    return isinstance(provider, str) and (provider == prefix or provider.startswith(prefix + "-"))


_DATED = re.compile(r"(?:-\d{4}-\d{2}-\d{2}|-\d{8}|@\d{8}|-\d{4})$")


def _name_variants(model: str) -> Iterator[str]:
    yield model
    undated = _DATED.sub("", model)
    if undated != model:
        yield undated
    if "/" in model:
        yield from _name_variants(model.rsplit("/", 1)[1])


def _image_index(entries: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    index: dict[tuple[str, str], dict[str, float]] = {}
    for key, entry in entries.items():
        match = _IMAGE_KEY.match(key)
        if match is None:
            continue
        width, height = int(match.group("w")), int(match.group("h"))
        price = _number(entry.get("output_cost_per_image"))
        if price is None:
            price = _number(entry.get("input_cost_per_image"))
        if price is None and (per_pixel := _number(entry.get("input_cost_per_pixel"))) is not None:
            price = per_pixel * width * height
        if price is None:
            continue
        prefix, quality = match.group("prefix") or "", match.group("quality") or ""
        if prefix and not quality and prefix not in ("azure", "openai", "aiml") and "_" not in prefix:
            prefix, quality = "", prefix  # "hd/1024-x-1024/model": the first part is a quality
        prices = index.setdefault((prefix, match.group("model")), {})
        prices[image_price_key(quality, f"{width}x{height}")] = price
    return index


@cache
def litellm_table() -> LitellmTable:
    """The vendored table, read once."""
    raw = orjson.loads((resources.files("hydite_common") / "data" / TABLE_FILE).read_bytes())
    entries = {k: v for k, v in raw.items() if isinstance(v, dict) and k != "sample_spec"}
    images = {key: MappingProxyType(prices) for key, prices in _image_index(entries).items()}
    return LitellmTable(MappingProxyType(entries), MappingProxyType(images))


@dataclass(frozen=True, slots=True)
class ModelLimits:
    """What LiteLLM's table says of a model besides its price."""

    max_tokens: int | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    litellm_provider: str = ""
    mode: str = ""


NO_LIMITS = ModelLimits()


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def limits_of(entry: Mapping[str, Any]) -> ModelLimits:
    """Context window and output limit of an entry."""
    provider = entry.get("litellm_provider")
    mode = entry.get("mode")
    return ModelLimits(
        max_tokens=_count(entry.get("max_tokens")) or _count(entry.get("max_output_tokens")),
        max_input_tokens=_count(entry.get("max_input_tokens")),
        max_output_tokens=_count(entry.get("max_output_tokens")),
        litellm_provider=provider if isinstance(provider, str) else "",
        mode=mode if isinstance(mode, str) else "",
    )
