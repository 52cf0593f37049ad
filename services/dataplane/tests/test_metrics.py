"""Request metrics: counted in dicts, written out in Prometheus' text format."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from hydite.config.v1 import config_pb2 as pb
from hydite_common.errors import BudgetExceededError, NotFoundError, RateLimitError, UpstreamError
from hydite_common.pricing import UNPRICED, CompiledPrice, Rates
from hydite_common.pricing.compiled import TieredRates
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.metrics import MAX_ERROR_CODES, OTHER_LABEL, OTHER_MODEL, RequestMetrics
from hydite_dataplane.request import InferenceRequest, TokenUsage, outcome_of

SAMPLE = re.compile(r'^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? -?[0-9.e+-]+$|^[a-z_]+(\{.*\})? \+?Inf$')


PRICE = CompiledPrice("deployment", default=TieredRates(Rates(input=1e-6, output=2e-6)))
CNY_PRICE = CompiledPrice("deployment", "CNY", TieredRates(Rates(input=1e-5, output=2e-5)))
RequestBuilder = Callable[..., InferenceRequest]
TargetBuilder = Callable[..., DeploymentTarget]


def test_counts_tokens_spend_and_durations(make_request: RequestBuilder, make_target: TargetBuilder) -> None:
    """Requests by status, tokens by kind, cost and a cumulative duration histogram."""
    metrics = RequestMetrics()
    target = make_target(model_name="gpt", upstream_model="gpt", price=PRICE)
    usage = TokenUsage(prompt_tokens=10, completion_tokens=5)
    metrics.after_call(make_request(model="gpt", seconds_ago=0.02), outcome_of(target, usage=usage))
    metrics.after_call(
        make_request(model="gpt", seconds_ago=3.0), outcome_of(target, usage=usage, ttft_ms=150)
    )
    metrics.after_call(
        make_request(model="gpt"), outcome_of(None, error=RateLimitError("x", code="rpm_limit_exceeded"))
    )
    metrics.add_gauge("hydite_config_version", "version", lambda: 7)
    text = metrics.exposition()
    lines = text.splitlines()
    assert all(SAMPLE.match(line) for line in lines if not line.startswith("#")), text
    ok = 'model="gpt",deployment="dep-1",provider="openai",operation="chat",status="200"'
    assert f"hydite_requests_total{{{ok}}} 2" in lines
    assert (
        'hydite_requests_total{model="gpt",deployment="",provider="",operation="chat",status="429"} 1'
        in lines
    )
    assert 'hydite_tokens_total{model="gpt",deployment="dep-1",kind="prompt"} 20' in lines
    assert 'hydite_tokens_total{model="gpt",deployment="dep-1",kind="completion"} 10' in lines
    spend = next(line for line in lines if line.startswith("hydite_spend_usd_total{"))
    assert abs(float(spend.rsplit(" ", 1)[1]) - 40e-6) < 1e-12
    assert 'hydite_request_duration_seconds_bucket{model="gpt",le="0.05"} 2' in lines
    assert 'hydite_request_duration_seconds_bucket{model="gpt",le="2.5"} 2' in lines
    assert 'hydite_request_duration_seconds_bucket{model="gpt",le="+Inf"} 3' in lines
    assert 'hydite_request_duration_seconds_count{model="gpt"} 3' in lines
    assert 'hydite_time_to_first_token_seconds_bucket{model="gpt",le="0.25"} 1' in lines
    assert "hydite_config_version 7" in lines


def test_label_values_are_escaped(make_request: RequestBuilder, make_target: TargetBuilder) -> None:
    """A model name with quotes, backslashes or newlines cannot break the format."""
    metrics = RequestMetrics()
    name = 'we"ird\\model\nname'
    target = make_target(model_name=name, upstream_model=name, price=PRICE)
    metrics.after_call(make_request(model=name), outcome_of(target, error=NotFoundError("x")))
    line = next(x for x in metrics.exposition().splitlines() if x.startswith("hydite_requests_total{"))
    assert line.startswith('hydite_requests_total{model="we\\"ird\\\\model\\nname",')
    assert SAMPLE.match(line)


def test_unknown_model_names_share_one_label(
    make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """Names no model group has (404s, whatever a client sends) are counted under one label, so a
    flood of unique names cannot grow the label set; a model that reached a deployment keeps its own."""
    metrics = RequestMetrics()
    for index in range(1000):
        metrics.after_call(make_request(model=f"junk-{index}"), outcome_of(None, error=NotFoundError("x")))
    target = make_target(model_name="gpt", upstream_model="gpt", price=PRICE)
    metrics.after_call(make_request(model="gpt"), outcome_of(target))
    assert set(metrics.durations) == {OTHER_MODEL, "gpt"}
    assert {labels[0] for labels in metrics.requests} == {OTHER_MODEL, "gpt"}
    assert metrics.requests[(OTHER_MODEL, "", "", "chat", 404)] == 1000


def test_unpriced_requests_are_counted_and_spend_is_kept_per_currency(
    make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """A request to an unpriced deployment counts in hydite_unpriced_requests_total (never as free
    spend); spend in another currency goes to hydite_spend_total only."""
    metrics = RequestMetrics()
    usage = TokenUsage(prompt_tokens=10, completion_tokens=5)
    unpriced = make_target(model_name="local", upstream_model="llama", price=UNPRICED)
    yuan = make_target("dep-cny", model_name="qwen", upstream_model="qwen", price=CNY_PRICE)
    metrics.after_call(make_request(model="local"), outcome_of(unpriced, usage=usage))
    metrics.after_call(make_request(model="local"), outcome_of(unpriced, usage=usage))
    metrics.after_call(make_request(model="qwen"), outcome_of(yuan, usage=usage))
    lines = metrics.exposition().splitlines()
    assert 'hydite_unpriced_requests_total{model_group="local",provider="openai"} 2' in lines
    assert not any(line.startswith("hydite_spend_usd_total{") for line in lines)
    spent = next(line for line in lines if line.startswith('hydite_spend_total{model="qwen"'))
    assert 'currency="CNY"' in spent and float(spent.rsplit(" ", 1)[1]) == pytest.approx(2e-4)


def test_errors_limits_retries_fallbacks_keys_and_overhead(
    make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """Failures by type and code, the gateway's own limit refusals by kind (a provider's 429 is not
    one), retries and fallbacks, requests by key alias and the overhead histogram (the model
    answered first, so its later refusals keep its name)."""
    metrics = RequestMetrics()
    target = make_target(model_name="gpt", upstream_model="gpt", price=PRICE)
    aliased = pb.VirtualKey(key_hash="h", key_alias="team-a")
    moved = make_request(model="gpt", key=aliased, attempts=2, fallbacks=1, overhead_seconds=0.0004)
    metrics.after_call(moved, outcome_of(target, usage=TokenUsage(prompt_tokens=3, completion_tokens=4)))
    refused = make_request(model="gpt", key=aliased)
    metrics.after_call(refused, outcome_of(None, error=RateLimitError("x", code="tpm_limit_exceeded")))
    metrics.after_call(make_request(model="gpt"), outcome_of(None, error=BudgetExceededError("over budget")))
    upstream_429 = make_request(model="gpt", attempts=3)
    metrics.after_call(upstream_429, outcome_of(target, error=RateLimitError("slow down")))
    lines = metrics.exposition().splitlines()
    assert 'hydite_limit_rejections_total{model="gpt",limit="tpm"} 1' in lines
    assert 'hydite_limit_rejections_total{model="gpt",limit="budget"} 1' in lines
    assert not any(
        line.startswith("hydite_limit_rejections_total") and "deployment" in line for line in lines
    )
    assert 'hydite_errors_total{model="gpt",type="rate_limit_error",code="rate_limit_exceeded"} 1' in lines
    assert 'hydite_errors_total{model="gpt",type="insufficient_quota",code="budget_exceeded"} 1' in lines
    assert 'hydite_retries_total{model="gpt"} 2' in lines
    assert 'hydite_fallbacks_total{model="gpt"} 1' in lines
    assert 'hydite_key_requests_total{key_alias="team-a",status="429"} 1' in lines
    assert 'hydite_key_requests_total{key_alias="team-a",status="200"} 1' in lines
    assert 'hydite_key_tokens_total{key_alias="team-a",kind="completion"} 4' in lines
    assert 'hydite_gateway_overhead_seconds_bucket{le="0.0005"} 1' in lines
    assert "hydite_gateway_overhead_seconds_count 1" in lines
    assert all(SAMPLE.match(line) for line in lines if not line.startswith("#")), lines


def test_key_aliases_and_error_codes_are_bounded(
    make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """Past the first aliases (and error codes) every new one is counted as (other)."""
    metrics = RequestMetrics(max_key_aliases=3)
    target = make_target(model_name="gpt", upstream_model="gpt", price=PRICE)
    for index in range(500):
        key = pb.VirtualKey(key_hash=f"h{index}", key_alias=f"alias-{index}")
        error = UpstreamError("x", code=f"provider-code-{index}")
        metrics.after_call(make_request(model="gpt", key=key), outcome_of(target, error=error))
    assert set(metrics.keys) == {"alias-0", "alias-1", "alias-2", OTHER_LABEL}
    assert len({code for _, _, code in metrics.errors}) == MAX_ERROR_CODES + 1
    assert not any("h1" in line for line in metrics.exposition().splitlines() if "key_hash" in line)


def test_genai_series_are_counted_only_once_asked_for(
    make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """Without an exporter nothing GenAI is counted; with one, durations, upstream time and tokens."""
    metrics = RequestMetrics()
    target = make_target(model_name="gpt", upstream_model="gpt", price=PRICE)
    usage = TokenUsage(prompt_tokens=10, completion_tokens=5)
    metrics.after_call(make_request(model="gpt"), outcome_of(target, usage=usage))
    assert metrics.genai is None
    series = metrics.count_genai()
    metrics.after_call(make_request(model="gpt", upstream_seconds=0.2), outcome_of(target, usage=usage))
    counted = series[("chat", "openai", "gpt", "")]
    assert counted.server_duration.count == 1 and counted.client_duration.sum == pytest.approx(0.2)
    assert (counted.input_tokens.sum, counted.output_tokens.sum) == (10, 5)
