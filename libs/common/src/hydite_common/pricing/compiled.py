"""A compiled price: what one request costs, from rates worked out when the price was resolved.

Per request this is arithmetic on precomputed floats: pick the period that applies at the
request's time (start dates, daily off-peak windows), the tier its prompt size reaches (a tier
applies to every token once the prompt passes its threshold), then multiply the usage out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

DEFAULT_CURRENCY = "USD"
SECONDS_PER_DAY = 86_400
ALL_WEEKDAYS = frozenset(range(1, 8))
"""ISO weekdays, Monday 1 to Sunday 7."""


class MeteredUsage(Protocol):
    """What a request used, in every unit a price may name (the data plane's TokenUsage)."""

    @property
    def prompt_tokens(self) -> int:
        """Every input token, cache reads and writes and audio included."""
        ...

    @property
    def completion_tokens(self) -> int:
        """Every output token, reasoning and audio included."""
        ...

    @property
    def cached_tokens(self) -> int:
        """Input tokens read from the prompt cache."""
        ...

    @property
    def reasoning_tokens(self) -> int:
        """Output tokens spent reasoning."""
        ...

    @property
    def cache_write_tokens(self) -> int:
        """Input tokens written to the prompt cache."""
        ...

    @property
    def audio_prompt_tokens(self) -> int:
        """Input tokens of audio."""
        ...

    @property
    def audio_completion_tokens(self) -> int:
        """Output tokens of audio."""
        ...

    @property
    def input_characters(self) -> int:
        """Characters of text turned into speech."""
        ...

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio transcribed or translated."""
        ...

    @property
    def images(self) -> int:
        """Images generated or edited."""
        ...

    @property
    def image_size(self) -> str:
        """The images' size as requested ("1024x1024"), "" when not an image request."""
        ...

    @property
    def image_quality(self) -> str:
        """The images' quality as requested ("standard", "hd", "low", ...)."""
        ...

    @property
    def search_units(self) -> int:
        """Rerank search units."""
        ...


def image_price_key(quality: str, size: str) -> str:
    """The key of a per-image price by quality and size ("hd/1024x1024"; "1024x1024" for any quality)."""
    return f"{quality}/{size}" if quality else size


NO_IMAGE_PRICES: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Rates:
    """Price per unit, in the price's currency. Every token rate is already filled in: a rate the
    source does not name takes the one it falls under (cache reads the input rate, audio output
    the output rate, ...), so `cost` never branches on what is missing."""

    input: float = 0.0
    output: float = 0.0
    cache_read: float = 0.0
    cache_write: float = 0.0
    audio_input: float = 0.0
    audio_output: float = 0.0
    reasoning: float = 0.0
    per_request: float = 0.0
    per_input_character: float = 0.0
    per_audio_second: float = 0.0
    per_search_unit: float = 0.0
    per_image: float = 0.0
    per_image_pixel: float = 0.0
    image_prices: Mapping[str, float] = field(default_factory=lambda: NO_IMAGE_PRICES)
    """Per-image prices by `image_price_key(quality, size)`."""

    def cost(self, usage: MeteredUsage) -> float:
        """The cost of usage at these rates."""
        prompt = usage.prompt_tokens
        cached = usage.cached_tokens
        if cached > prompt:
            cached = prompt
        written = usage.cache_write_tokens
        audio_in = usage.audio_prompt_tokens
        text_in = prompt - cached - written - audio_in
        audio_out = usage.audio_completion_tokens
        reasoning = usage.reasoning_tokens
        completion = usage.completion_tokens
        text_out = completion - audio_out - reasoning
        total = (
            (text_in if text_in > 0 else 0) * self.input
            + cached * self.cache_read
            + written * self.cache_write
            + audio_in * self.audio_input
            + (text_out if text_out > 0 else 0) * self.output
            + audio_out * self.audio_output
            + reasoning * self.reasoning
            + self.per_request
        )
        if usage.input_characters:
            total += usage.input_characters * self.per_input_character
        if usage.audio_seconds:
            total += usage.audio_seconds * self.per_audio_second
        if usage.search_units:
            total += usage.search_units * self.per_search_unit
        # An image model that reports tokens is billed by them; a per-image price is for the
        # answers that report none (its per-image list price would count the same work twice).
        if usage.images and not (prompt or completion):
            total += usage.images * self.image_price(usage.image_quality, usage.image_size)
        return total

    def image_price(self, quality: str, size: str) -> float:
        """The price of one image of this quality and size: its own, the size's, else the flat one."""
        prices = self.image_prices
        if prices:
            price = prices.get(image_price_key(quality, size))
            if price is None:
                price = prices.get(size)
            if price is not None:
                return price
        if self.per_image_pixel:
            width, _, height = size.partition("x")
            if width.isdigit() and height.isdigit():
                return int(width) * int(height) * self.per_image_pixel
        return self.per_image


FREE_RATES = Rates()


@dataclass(frozen=True, slots=True)
class TieredRates:
    """Rates by prompt size: the last tier whose threshold the prompt exceeds applies to all of it."""

    base: Rates
    tiers: tuple[tuple[int, Rates], ...] = ()
    """(threshold in prompt tokens, rates), thresholds ascending."""

    def for_prompt(self, prompt_tokens: int) -> Rates:
        """The rates a prompt of this many tokens is billed at."""
        rates = self.base
        for threshold, tier in self.tiers:
            if prompt_tokens > threshold:
                rates = tier
            else:
                break
        return rates


@dataclass(frozen=True, slots=True)
class Period:
    """When a set of rates applies: from a moment on, within a daily UTC window, on some weekdays."""

    starts_at: float = -math.inf
    """Epoch seconds."""
    day_start: int = 0
    """Seconds after UTC midnight; a window whose end is before its start runs over midnight."""
    day_end: int = SECONDS_PER_DAY
    weekdays: frozenset[int] = ALL_WEEKDAYS

    def active(self, at: float) -> bool:
        """Whether the period applies at epoch second `at`."""
        if at < self.starts_at:
            return False
        if self.weekdays is not ALL_WEEKDAYS and _weekday(at) not in self.weekdays:
            return False
        if self.day_start == 0 and self.day_end == SECONDS_PER_DAY:
            return True
        second = at % SECONDS_PER_DAY
        if self.day_end < self.day_start:
            return second >= self.day_start or second < self.day_end
        return self.day_start <= second < self.day_end


def _weekday(at: float) -> int:
    # 1970-01-01 was a Thursday (ISO weekday 4).
    return (int(at // SECONDS_PER_DAY) + 3) % 7 + 1


ALWAYS = Period()


@dataclass(frozen=True, slots=True)
class CompiledPrice:
    """A deployment's price: `cost(usage, at)`, the currency it is in and where it came from."""

    source: str
    """"deployment" | "model_info" | "genai-prices" | "litellm" | "unknown"."""
    currency: str = DEFAULT_CURRENCY
    default: TieredRates = field(default_factory=lambda: TieredRates(FREE_RATES))
    periods: tuple[tuple[Period, TieredRates], ...] = ()
    """Checked in order; the first that is active applies, else `default`."""
    model: str = ""
    """The entry of the source that priced it (the model it matched), "" for a deployment's own."""

    @property
    def known(self) -> bool:
        """Whether any source priced it."""
        return self.source != UNKNOWN

    def rates_at(self, at: float) -> TieredRates:
        """The tiered rates that apply at epoch second `at`."""
        for period, tiered in self.periods:
            if period.active(at):
                return tiered
        return self.default

    def cost(self, usage: MeteredUsage, at: float) -> float:
        """What usage costs at epoch second `at`, in `currency`."""
        tiered = self.default
        for period, candidate in self.periods:
            if period.active(at):
                tiered = candidate
                break
        rates = tiered.base if not tiered.tiers else tiered.for_prompt(usage.prompt_tokens)
        return rates.cost(usage)


UNKNOWN = "unknown"
UNPRICED = CompiledPrice(UNKNOWN)
"""The price of a model no source knows and its deployment does not price: everything costs 0,
and the usage event says why (cost_source "unknown")."""
