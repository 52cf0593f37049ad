"""Which requests are traced and what their providers are sent, span attributes by the GenAI
conventions, the GenAI metrics built from the counted series, and the usage event's trace id."""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.sdk.metrics.export import HistogramDataPoint
from opentelemetry.sdk.resources import Resource

from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.genai_metrics import genai_metrics_data, metrics_url
from hydite_dataplane.metrics import RequestMetrics
from hydite_dataplane.request import InferenceRequest, TokenUsage, outcome_of
from hydite_dataplane.settings import DataplaneSettings
from hydite_dataplane.tracing import RequestTracer, span_attributes, traces_url
from hydite_dataplane.usage.event import build_usage_event

RequestBuilder = Callable[..., InferenceRequest]
TargetBuilder = Callable[..., DeploymentTarget]

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SAMPLED = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
UNSAMPLED = f"00-{TRACE_ID}-00f067aa0ba902b7-00"


def _tracer(ratio: float = 0.0) -> RequestTracer:
    return RequestTracer("http://127.0.0.1:9/v1/traces", ratio, "node-1")


def test_a_sampled_parent_is_traced_and_providers_get_the_gateway_span(make_request: RequestBuilder) -> None:
    """Same trace, a new span id of the gateway's own, flags sampled."""
    request = make_request()
    _tracer().decide(request, SAMPLED)
    assert request.trace_parent == SAMPLED
    sent = request.upstream_traceparent
    assert sent is not None and sent.startswith(f"00-{TRACE_ID}-") and sent.endswith("-01")
    assert sent[36:52] != "00f067aa0ba902b7"


def test_an_unsampled_parent_passes_unchanged_and_junk_is_dropped(make_request: RequestBuilder) -> None:
    """Unsampled: not traced, the header goes on as it came; a malformed one goes nowhere."""
    request = make_request()
    _tracer().decide(request, UNSAMPLED)
    assert (request.trace_parent, request.upstream_traceparent) == (None, UNSAMPLED)
    junk = make_request()
    _tracer().decide(junk, "00-" + "z" * 32 + "-00f067aa0ba902b7-01")
    assert (junk.trace_parent, junk.upstream_traceparent) == (None, None)


def test_the_ratio_starts_new_traces(make_request: RequestBuilder) -> None:
    """Ratio 1 traces every request without a traceparent as a new trace; ratio 0 none."""
    traced, untraced = make_request(), make_request()
    _tracer(1.0).decide(traced, None)
    _tracer(0.0).decide(untraced, None)
    assert traced.trace_parent == "" and traced.upstream_traceparent is not None
    assert (untraced.trace_parent, untraced.upstream_traceparent) == (None, None)


def test_standard_variables_choose_the_urls() -> None:
    """The base endpoint gets /v1/traces and /v1/metrics; a signal's own endpoint wins; always_off
    turns spans off."""
    base = DataplaneSettings(OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4318/")  # type: ignore[call-arg]
    assert (traces_url(base), metrics_url(base)) == (
        "http://collector:4318/v1/traces",
        "http://collector:4318/v1/metrics",
    )
    own = DataplaneSettings(  # type: ignore[call-arg]
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://t/x", OTEL_EXPORTER_OTLP_METRICS_ENDPOINT="http://m/y"
    )
    assert (traces_url(own), metrics_url(own)) == ("http://t/x", "http://m/y")
    off = DataplaneSettings(OTEL_EXPORTER_OTLP_ENDPOINT="http://c", OTEL_TRACES_SAMPLER="always_off")  # type: ignore[call-arg]
    assert traces_url(off) == "" and RequestTracer.of(off, "n") is None
    assert traces_url(DataplaneSettings()) == "" and metrics_url(DataplaneSettings()) == ""


def test_span_attributes_follow_the_genai_conventions(
    make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """Provider and operation by their convention names, the server's address, usage, parameters."""
    target = make_target(
        provider="anthropic", upstream_model="claude-x", api_base="https://api.example.com:8443"
    )
    request = make_request({"max_tokens": 50, "temperature": 0.2, "messages": []}, model="claude")
    usage = TokenUsage(prompt_tokens=12, completion_tokens=3, cached_tokens=4)
    answer = {"choices": [{"finish_reason": "stop"}]}
    outcome = outcome_of(target, usage=usage, ttft_ms=120, response_id="msg_1", answer=answer)
    attributes = span_attributes(request, outcome, "chat", "claude")
    assert {
        "gen_ai.provider.name": "anthropic",
        "gen_ai.response.model": "claude-x",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 3,
        "gen_ai.usage.cache_read.input_tokens": 4,
        "gen_ai.request.max_tokens": 50,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.response.id": "msg_1",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.response.time_to_first_chunk": 0.12,
        "server.address": "api.example.com",
        "server.port": 8443,
    }.items() <= attributes.items()
    gemini = span_attributes(request, outcome_of(make_target(provider="gemini")), "chat", "claude")
    assert gemini["gen_ai.provider.name"] == "gcp.gemini"


def test_genai_metrics_data_from_the_counted_series(
    make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """Cumulative histograms by the conventions' names and attributes; tokens by token type."""
    metrics = RequestMetrics()
    series = metrics.count_genai()
    target = make_target(model_name="gpt", upstream_model="gpt")
    usage = TokenUsage(prompt_tokens=100, completion_tokens=20)
    metrics.after_call(make_request(model="gpt", upstream_seconds=0.5), outcome_of(target, usage=usage))
    metrics.after_call(make_request(model="gpt", operation="completions"), outcome_of(target, usage=usage))
    data = genai_metrics_data(series, Resource.create({}), 1, 2)
    by_name = {m.name: m for m in data.resource_metrics[0].scope_metrics[0].metrics}
    assert set(by_name) == {
        "gen_ai.server.request.duration",
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
    }

    def points(name: str) -> list[tuple[dict[str, object], HistogramDataPoint]]:
        found = by_name[name].data.data_points
        return [(dict(p.attributes or {}), p) for p in found if isinstance(p, HistogramDataPoint)]

    tokens = {
        (a["gen_ai.operation.name"], a["gen_ai.token.type"]): p
        for a, p in points("gen_ai.client.token.usage")
    }
    assert tokens[("chat", "input")].sum == 100 and tokens[("text_completion", "output")].sum == 20
    client = points("gen_ai.client.operation.duration")
    assert sum(p.sum for _, p in client) == 0.5
    assert all(a["gen_ai.provider.name"] == "openai" for a, _ in client)


def test_the_usage_event_carries_the_trace_id(
    make_request: RequestBuilder, make_target: TargetBuilder
) -> None:
    """A request with a traceparent bills with its trace id; one without has none."""
    traced = make_request(upstream_traceparent=SAMPLED)
    event = build_usage_event(traced, outcome_of(make_target()))
    assert event["trace_id"] == TRACE_ID
    assert "trace_id" not in build_usage_event(make_request(), outcome_of(make_target()))
