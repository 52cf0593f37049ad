"""Sampled requests are traced over OTLP/HTTP to a collector, following the GenAI semantic
conventions, and unsampled ones are not; providers are sent a traceparent (the gateway span's, or
the client's own when untraced); the GenAI metrics reach the collector over OTLP; OpenTelemetry's
standard variables configure all of it; the data plane logs JSON lines."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import orjson
import pytest
from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import HistogramDataPoint
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from hydite_common.devstack import ServiceProcess, Stack, free_port
from tests.fakes.openai_server import FakeOpenAI, FakeServerThread
from tests.harness import deploy_fake, synced, unique, wait_until

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


COLLECTOR_TOKEN = "collector-token-0123"


def _attributes(attributes: list[KeyValue]) -> dict[str, object]:
    """OTLP attributes as plain values (strings, ints, floats, booleans)."""
    values: dict[str, object] = {}
    for attribute in attributes:
        kind = attribute.value.WhichOneof("value")
        values[attribute.key] = getattr(attribute.value, kind) if kind else None
    return values


class FakeCollector:
    """An OTLP/HTTP receiver that keeps every span and metric it is sent, and the headers they came with."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.metrics: list[ExportMetricsServiceRequest] = []
        self.resources: list[dict[str, object]] = []
        self.tokens: list[str | None] = []
        self._lock = threading.Lock()

    def app(self) -> web.Application:
        """POST /v1/traces and /v1/metrics with protobuf bodies."""

        async def traces(request: web.Request) -> web.Response:
            export = ExportTraceServiceRequest.FromString(await request.read())
            with self._lock:
                self.tokens.append(request.headers.get("x-collector-token"))
                for resource_spans in export.resource_spans:
                    self.resources.append(_attributes(list(resource_spans.resource.attributes)))
                    for scope_spans in resource_spans.scope_spans:
                        self.spans.extend(scope_spans.spans)
            return web.Response(
                body=ExportTraceServiceResponse().SerializeToString(),
                content_type="application/x-protobuf",
            )

        async def metrics(request: web.Request) -> web.Response:
            export = ExportMetricsServiceRequest.FromString(await request.read())
            with self._lock:
                self.tokens.append(request.headers.get("x-collector-token"))
                self.metrics.append(export)
            return web.Response(
                body=ExportMetricsServiceResponse().SerializeToString(),
                content_type="application/x-protobuf",
            )

        app = web.Application()
        app.router.add_post("/v1/traces", traces)
        app.router.add_post("/v1/metrics", metrics)
        return app

    def with_request_id(self, request_id: str) -> Span | None:
        """The span of one request, by its hydite.request_id attribute."""
        with self._lock:
            for span in self.spans:
                for attribute in span.attributes:
                    if attribute.key == "hydite.request_id" and attribute.value.string_value == request_id:
                        return span
        return None

    def histogram_points(self, name: str, model: str) -> list[HistogramDataPoint]:
        """The points of metric name for model in the latest export that has them (exports are cumulative)."""
        with self._lock:
            exports = list(self.metrics)
        for export in reversed(exports):
            points = [
                point
                for resource_metrics in export.resource_metrics
                for scope_metrics in resource_metrics.scope_metrics
                for metric in scope_metrics.metrics
                if metric.name == name
                for point in metric.histogram.data_points
                if _attributes(list(point.attributes)).get("gen_ai.request.model") == model
            ]
            if points:
                return points
        return []


@dataclass
class Traced:
    """The traced data plane's base URL and process, and its collector."""

    base_url: str
    service: ServiceProcess
    collector: FakeCollector


@pytest.fixture(scope="module")
def traced(stack: Stack) -> Iterator[Traced]:
    """A second data plane exporting spans and GenAI metrics to a fake collector, configured by
    OpenTelemetry's standard variables only."""
    collector = FakeCollector()
    server = FakeServerThread(collector.app())
    endpoint = server.start()
    port = free_port()
    service = stack.start_dataplane(
        port=port,
        node_id="dataplane-traced",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_HEADERS=f"x-collector-token={COLLECTOR_TOKEN}",
        OTEL_SERVICE_NAME="hydite-traced",
        OTEL_METRIC_EXPORT_INTERVAL="200",
        OTEL_BSP_SCHEDULE_DELAY="50",
        HYDITE_LOG_LEVEL="DEBUG",
    )
    try:
        yield Traced(f"http://127.0.0.1:{port}", service, collector)
    finally:
        stack.stop_service(service)
        server.stop()


def test_a_sampled_traceparent_gets_a_child_span_with_genai_attributes(
    traced: Traced, admin: httpx.Client
) -> None:
    """The span continues the caller's trace, names operation and model, and carries no key or prompt."""
    base_url, collector = traced.base_url, traced.collector
    model = unique("traced-mock")
    assert admin.post(
        "/model/new", json={"model_name": model, "litellm_params": {"model": "mock/m"}}
    ).is_success
    key = admin.post("/key/generate", json={}).json()["key"]
    synced(admin)

    def chat(traceparent: str | None) -> str:
        headers = {"Authorization": f"Bearer {key}"}
        if traceparent:
            headers["traceparent"] = traceparent
        response = wait_until(
            lambda: (
                (
                    r := httpx.post(
                        base_url + "/v1/chat/completions",
                        headers=headers,
                        json={"model": model, "messages": [{"role": "user", "content": "secret prompt"}]},
                    )
                ).status_code
                == 200
                and r
            ),
            timeout=5.0,
        )
        return str(response.headers["x-request-id"])

    sampled = chat(f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01")
    unsampled = chat(f"00-{TRACE_ID}-{PARENT_SPAN_ID}-00")
    untraced = chat(None)
    span = wait_until(lambda: collector.with_request_id(sampled), timeout=10.0, interval=0.05)
    assert span.trace_id.hex() == TRACE_ID and span.parent_span_id.hex() == PARENT_SPAN_ID
    assert span.name == f"chat {model}" and span.kind == Span.SPAN_KIND_SERVER
    attributes = {a.key: a.value for a in span.attributes}
    assert attributes["gen_ai.request.model"].string_value == model
    assert attributes["gen_ai.operation.name"].string_value == "chat"
    assert attributes["gen_ai.provider.name"].string_value == "mock"
    assert attributes["gen_ai.usage.input_tokens"].int_value > 0
    assert attributes["http.response.status_code"].int_value == 200
    assert span.end_time_unix_nano > span.start_time_unix_nano
    encoded = span.SerializeToString()
    assert key.encode() not in encoded and b"secret prompt" not in encoded
    chat(f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01")  # a later export proves the earlier ones were sent
    wait_until(lambda: len(collector.spans) >= 2, timeout=10.0, interval=0.05)
    assert collector.with_request_id(unsampled) is None and collector.with_request_id(untraced) is None
    assert {"service.name": "hydite-traced", "service.instance.id": "dataplane-traced"}.items() <= (
        collector.resources[0].items()
    )
    assert set(collector.tokens) == {COLLECTOR_TOKEN}


def test_a_refused_request_is_an_error_span(traced: Traced, admin: httpx.Client) -> None:
    """A sampled request refused by its key's rate limit still ends its span, marked as an error."""
    base_url, collector = traced.base_url, traced.collector
    model = unique("traced-limited")
    assert admin.post(
        "/model/new", json={"model_name": model, "litellm_params": {"model": "mock/m"}}
    ).is_success
    key = admin.post("/key/generate", json={"rpm_limit": 0}).json()["key"]
    synced(admin)
    response = wait_until(
        lambda: (
            (
                r := httpx.post(
                    base_url + "/v1/chat/completions",
                    headers={
                        "Authorization": f"Bearer {key}",
                        "traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01",
                    },
                    json={"model": model, "messages": [{"role": "user", "content": "x"}]},
                )
            ).status_code
            == 429
            and r
        ),
        timeout=5.0,
    )
    span = wait_until(
        lambda: collector.with_request_id(response.headers["x-request-id"]), timeout=10.0, interval=0.05
    )
    assert span.status.code == span.status.STATUS_CODE_ERROR
    attributes = {a.key: a.value for a in span.attributes}
    assert attributes["error.type"].string_value == "rpm_limit_exceeded"


def _traceparent(trace_id: str, sampled: bool) -> str:
    return f"00-{trace_id}-{PARENT_SPAN_ID}-{'01' if sampled else '00'}"


def _sent_traceparent(fake: FakeOpenAI, trace_id: str) -> str:
    """The traceparent the fake provider was sent in the trace."""
    return str(
        wait_until(
            lambda: next(
                (h["traceparent"] for h in fake.headers if trace_id in h.get("traceparent", "")), None
            ),
            timeout=5.0,
        )
    )


def test_providers_get_the_gateway_span_as_parent_or_the_clients_traceparent(
    traced: Traced, stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """A traced call's provider request carries a traceparent whose parent is the gateway's span; an
    untraced one, on a data plane tracing or not, carries the client's own unchanged."""
    fake, base = fake_openai
    model = unique("traced-upstream")
    deploy_fake(admin, base, model, "gpt-4o")
    key = admin.post("/key/generate", json={}).json()["key"]
    synced(admin)

    def chat(base_url: str, traceparent: str) -> httpx.Response:
        response = httpx.post(
            base_url + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}", "traceparent": traceparent},
            json={"model": model, "messages": [{"role": "user", "content": "hello"}]},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response

    sampled_trace, unsampled_trace, untraced_trace = (unique("t")[-12:].rjust(32, "a") for _ in range(3))
    answer = chat(traced.base_url, _traceparent(sampled_trace, True))
    span = wait_until(
        lambda: traced.collector.with_request_id(answer.headers["x-request-id"]), timeout=10.0, interval=0.05
    )
    sent = _sent_traceparent(fake, sampled_trace)
    assert sent == f"00-{sampled_trace}-{span.span_id.hex()}-01"
    assert span.parent_span_id.hex() == PARENT_SPAN_ID
    attributes = {a.key: a.value for a in span.attributes}
    assert attributes["gen_ai.provider.name"].string_value == "openai"
    assert attributes["gen_ai.response.model"].string_value == "gpt-4o"
    assert attributes["server.address"].string_value == "127.0.0.1"
    assert attributes["gen_ai.usage.output_tokens"].int_value > 0
    chat(traced.base_url, _traceparent(unsampled_trace, False))
    assert _sent_traceparent(fake, unsampled_trace) == _traceparent(unsampled_trace, False)
    chat(stack.base_url, _traceparent(untraced_trace, True))
    assert _sent_traceparent(fake, untraced_trace) == _traceparent(untraced_trace, True)


def test_genai_metrics_reach_the_collector(
    traced: Traced, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """Token usage by token type, server request duration, client operation duration and time to
    first token arrive over OTLP, from an unsampled complete and streamed call."""
    _, base = fake_openai
    model = unique("metered-upstream")
    deploy_fake(admin, base, model, "gpt-4o")
    key = admin.post("/key/generate", json={}).json()["key"]
    synced(admin)
    for stream in (False, True):
        response = httpx.post(
            traced.base_url + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream},
            timeout=10,
        )
        assert response.status_code == 200, response.text
    collector = traced.collector

    def exported() -> dict[str, list[HistogramDataPoint]] | None:
        found = {
            name: collector.histogram_points(name, model)
            for name in (
                "gen_ai.client.token.usage",
                "gen_ai.server.request.duration",
                "gen_ai.client.operation.duration",
                "gen_ai.server.time_to_first_token",
            )
        }
        complete = sum(p.count for p in found["gen_ai.server.request.duration"]) == 2
        return found if complete and found["gen_ai.server.time_to_first_token"] else None

    found = wait_until(exported, timeout=10.0, interval=0.1)
    tokens = {
        str(_attributes(list(p.attributes))["gen_ai.token.type"]): p
        for p in found["gen_ai.client.token.usage"]
    }
    assert set(tokens) == {"input", "output"} and tokens["output"].count == 2 and tokens["input"].sum > 0
    duration = _attributes(list(found["gen_ai.server.request.duration"][0].attributes))
    assert duration["gen_ai.operation.name"] == "chat" and duration["gen_ai.provider.name"] == "openai"
    assert sum(p.count for p in found["gen_ai.client.operation.duration"]) == 2
    assert sum(p.count for p in found["gen_ai.server.time_to_first_token"]) == 1
    assert not any(span.name.endswith(model) for span in collector.spans)  # metrics need no span


def test_the_dataplane_logs_json_lines_with_the_request_id(
    traced: Traced, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """Every line the traced data plane logged is one JSON object naming its service, and a line
    logged while serving a request (a retry, at debug level) names the request."""
    _, base = fake_openai
    model = unique("logged-failing")
    deploy_fake(admin, base, model, "fail-500")
    key = admin.post("/key/generate", json={}).json()["key"]
    synced(admin)
    response = httpx.post(
        traced.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "secret prompt"}], "num_retries": 1},
        timeout=10,
    )
    assert response.status_code == 502, response.text
    request_id = response.headers["x-request-id"]
    log_path = traced.service.log_path
    assert log_path is not None

    def entries() -> list[dict[str, object]]:
        lines = [line for line in log_path.read_text().splitlines() if line.strip()]
        return [orjson.loads(line) for line in lines]

    retried = wait_until(
        lambda: [e for e in entries() if e.get("request_id") == request_id], timeout=5.0, interval=0.05
    )
    assert "retrying" in str(retried[0]["msg"])
    logged = entries()
    assert all(entry["service"] == "dataplane" and entry["level"] for entry in logged)
    assert not any(key in str(entry) or "secret prompt" in str(entry) for entry in logged)
