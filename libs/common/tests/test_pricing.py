"""Price resolution and compiled costs (hydite_common.pricing), golden-style: each case of
golden/pricing/cases.json (a deployment's provider, model, price settings, a usage and a time)
against golden/pricing/expected.json (source, currency, matched model and cost), compared whole."""

from __future__ import annotations

import calendar
import datetime as dt
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from hydite_common.pricing import (
    UNKNOWN,
    is_price_setting,
    list_price,
    model_info_fields,
    price_settings,
    resolve_price,
)
from hydite_common.pricing.compiled import Period
from hydite_common.pricing.litellm_source import litellm_table

GOLDEN = Path(__file__).parent / "golden" / "pricing"


@dataclass(frozen=True)
class Usage:
    """A MeteredUsage (the data plane's TokenUsage has the same fields)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0
    audio_prompt_tokens: int = 0
    audio_completion_tokens: int = 0
    input_characters: int = 0
    audio_seconds: float = 0.0
    images: int = 0
    image_size: str = ""
    image_quality: str = ""
    search_units: int = 0


def _epoch(text: str) -> float:
    return float(calendar.timegm(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).utctimetuple()))


def _outcome(case: dict[str, Any]) -> dict[str, Any]:
    resolved = resolve_price(
        case["provider"], case["model"], case.get("litellm_params", {}), case.get("model_info", {})
    )
    price = resolved.price
    cost = price.cost(Usage(**case["usage"]), _epoch(case["at"]))
    return {"source": price.source, "currency": price.currency, "model": price.model, "cost": round(cost, 12)}


def test_resolution_and_costs_match_the_golden_file() -> None:
    """Every case resolves to its expected source and costs its expected amount."""
    cases = orjson.loads((GOLDEN / "cases.json").read_bytes())
    expected = orjson.loads((GOLDEN / "expected.json").read_bytes())
    assert {name: _outcome(case) for name, case in cases.items()} == expected


def test_golden_costs_are_the_published_rates() -> None:
    """A few golden numbers worked out by hand from the providers' list prices."""
    expected = orjson.loads((GOLDEN / "expected.json").read_bytes())
    mini = 800 * 0.15e-6 + 200 * 0.075e-6 + 100 * 0.6e-6
    assert expected["gpt-4o-mini cache reads"]["cost"] == pytest.approx(mini)
    # Above 200k prompt tokens Sonnet 4.5 bills $6 / $22.50 / $0.60 read / $7.50 write per MTok.
    tier = 220_000 * 6e-6 + 20_000 * 0.6e-6 + 10_000 * 7.5e-6 + 1000 * 22.5e-6
    assert expected["claude above 200k: every token at the tier's rates, cache writes too"]["cost"] == (
        pytest.approx(tier)
    )
    assert expected["tts-1 by characters"]["cost"] == pytest.approx(1000 * 15e-6)
    assert expected["whisper-1 by seconds"]["cost"] == pytest.approx(90 * 0.36 / 3600)
    assert expected["cohere rerank by search units"]["cost"] == pytest.approx(3 * 0.002)
    yuan = 1000 * 8e-7 + 1000 * 2e-6
    assert expected["deployment prices in CNY"] == {
        "source": "deployment", "currency": "CNY", "model": "", "cost": pytest.approx(yuan),
    }  # fmt: skip
    assert expected["a model nobody prices"] == {
        "source": UNKNOWN,
        "currency": "USD",
        "model": "",
        "cost": 0.0,
    }


def test_list_price_is_resolved_once_per_provider_and_model() -> None:
    """A 10k-deployment snapshot naming a few models resolves each of them once."""
    list_price.cache_clear()
    started = time.perf_counter()
    for index in range(10_000):
        resolve_price("openai", ("gpt-4o-mini", "gpt-4o", "o3-mini")[index % 3], {}, {})
    assert list_price.cache_info().misses == 3
    assert time.perf_counter() - started < 2.0


def test_price_settings_are_told_from_provider_params() -> None:
    """LiteLLM's price names (tiers, currency included) are price settings; provider params are not."""
    params = {
        "input_cost_per_token": 1e-6, "input_cost_per_token_above_200k_tokens": 2e-6, "currency": "CNY",
        "off_peak_pricing": {}, "temperature": 0.2, "seed": 1, "cost_per_request": 0.1,
    }  # fmt: skip
    assert set(price_settings(params)) == {
        "input_cost_per_token", "input_cost_per_token_above_200k_tokens", "currency", "off_peak_pricing",
        "cost_per_request",
    }  # fmt: skip
    assert not is_price_setting("service_tier")


def test_model_info_fields_show_prices_limits_and_source() -> None:
    """/model/info's view: LiteLLM's names, the tier above 200k, the table's limits, the source."""
    fields = model_info_fields(list_price("gemini", "gemini-2.5-pro"), _epoch("2026-06-01T12:00:00Z"))
    assert fields["input_cost_per_token"] == pytest.approx(1.25e-6)
    assert fields["input_cost_per_token_above_200k_tokens"] == pytest.approx(2.5e-6)
    assert fields["cache_read_input_token_cost"] == pytest.approx(0.125e-6)
    assert (fields["max_input_tokens"], fields["max_output_tokens"]) == (1048576, 65536)
    assert (fields["hydite_price_source"], fields["currency"], fields["litellm_provider"]) == (
        "genai-prices", "USD", "gemini",
    )  # fmt: skip


def test_daily_windows_wrap_midnight_and_weekdays_count_from_monday() -> None:
    """An off-peak window over midnight holds on both sides of it; weekday 6 is Saturday."""
    night = Period(day_start=16 * 3600 + 1800, day_end=1800)
    assert night.active(_epoch("2026-06-01T23:00:00Z")) and night.active(_epoch("2026-06-02T00:10:00Z"))
    assert not night.active(_epoch("2026-06-02T12:00:00Z"))
    weekend = Period(weekdays=frozenset({6, 7}))
    assert weekend.active(_epoch("2026-06-06T12:00:00Z"))  # a Saturday
    assert not weekend.active(_epoch("2026-06-05T12:00:00Z"))
    assert Period(starts_at=_epoch("2026-01-01T00:00:00Z")).active(math.inf)


def test_the_vendored_table_is_packaged_and_read() -> None:
    """LiteLLM's table ships inside hydite_common (package data) and parses."""
    table = litellm_table()
    assert len(table.entries) > 1000
    assert table.entry("gemini", "gemini-2.5-pro") is not None
