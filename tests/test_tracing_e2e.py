"""Sampled requests are traced over OTLP/HTTP to a collector; unsampled ones are not."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from hydite_common.devstack import Stack, free_port
from tests.fakes.openai_server import FakeServerThread
from tests.harness import synced, unique, wait_until

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


class FakeCollector:
    """An OTLP/HTTP trace receiver that keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()

    def app(self) -> web.Application:
        """POST /v1/traces with protobuf bodies."""

        async def traces(request: web.Request) -> web.Response:
            export = ExportTraceServiceRequest.FromString(await request.read())
            with self._lock:
                for resource_spans in export.resource_spans:
                    for scope_spans in resource_spans.scope_spans:
                        self.spans.extend(scope_spans.spans)
            return web.Response(
                body=ExportTraceServiceResponse().SerializeToString(),
                content_type="application/x-protobuf",
            )

        app = web.Application()
        app.router.add_post("/v1/traces", traces)
        return app

    def with_request_id(self, request_id: str) -> Span | None:
        """The span of one request, by its hydite.request_id attribute."""
        with self._lock:
            for span in self.spans:
                for attribute in span.attributes:
                    if attribute.key == "hydite.request_id" and attribute.value.string_value == request_id:
                        return span
        return None


@pytest.fixture(scope="module")
def traced(stack: Stack) -> Iterator[tuple[str, FakeCollector]]:
    """A second data plane exporting traces to a fake collector; its base URL and the collector."""
    collector = FakeCollector()
    server = FakeServerThread(collector.app())
    endpoint = server.start()
    port = free_port()
    service = stack.start_dataplane(
        port=port,
        node_id="dataplane-traced",
        HYDITE_TRACING_OTLP_ENDPOINT=endpoint,
        OTEL_BSP_SCHEDULE_DELAY="50",
    )
    try:
        yield f"http://127.0.0.1:{port}", collector
    finally:
        stack.stop_service(service)
        server.stop()


def test_a_sampled_traceparent_gets_a_child_span_with_genai_attributes(
    traced: tuple[str, FakeCollector], admin: httpx.Client
) -> None:
    """The span continues the caller's trace, names operation and model, and carries no key or prompt."""
    base_url, collector = traced
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
    assert attributes["gen_ai.provider.name"].string_value == "mock"
    assert attributes["gen_ai.usage.input_tokens"].int_value > 0
    assert attributes["http.response.status_code"].int_value == 200
    assert span.end_time_unix_nano > span.start_time_unix_nano
    encoded = span.SerializeToString()
    assert key.encode() not in encoded and b"secret prompt" not in encoded
    chat(f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01")  # a later export proves the earlier ones were sent
    wait_until(lambda: len(collector.spans) >= 2, timeout=10.0, interval=0.05)
    assert collector.with_request_id(unsampled) is None and collector.with_request_id(untraced) is None


def test_a_refused_request_is_an_error_span(traced: tuple[str, FakeCollector], admin: httpx.Client) -> None:
    """A sampled request refused by its key's rate limit still ends its span, marked as an error."""
    base_url, collector = traced
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
