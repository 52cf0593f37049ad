"""The OpenTelemetry GenAI metrics (`gen_ai.client.token.usage`, `gen_ai.server.request.duration`,
`gen_ai.server.time_to_first_token`, `gen_ai.client.operation.duration`), exported over OTLP/HTTP.

No instrument is called per request: the request path counts into `RequestMetrics`' GenAI
series (plain histograms), and every export interval those are read, on the event loop so the
reading is consistent, into cumulative histogram points that a worker thread sends. The gateway
is the GenAI server its clients call (server metrics: arrival to the end of the answer) and the
client of its providers (client operation duration: the time spent waiting for them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from hydite_dataplane.metrics import GenAiKey, GenAiSeries, RequestMetrics
from hydite_dataplane.metrics import Histogram as CountedHistogram
from hydite_dataplane.semconv import operation_name, provider_name
from hydite_dataplane.settings import DataplaneSettings
from hydite_dataplane.tracing import otlp_url

log = logging.getLogger(__name__)

Attributes = dict[str, str]


def metrics_url(settings: DataplaneSettings) -> str:
    """Where the GenAI metrics go ("": they are not exported)."""
    if settings.metrics_otlp_endpoint:
        return settings.metrics_otlp_endpoint
    return otlp_url(settings.tracing_otlp_endpoint, "metrics") if settings.tracing_otlp_endpoint else ""


def _attributes(key: GenAiKey, with_error: bool) -> Attributes:
    operation, provider, model, error = key
    attributes = {"gen_ai.operation.name": operation_name(operation), "gen_ai.request.model": model}
    if provider:
        attributes["gen_ai.provider.name"] = provider_name(provider)
    if with_error and error:
        attributes["error.type"] = error
    return attributes


def _point(
    attributes: Attributes, counted: CountedHistogram, start_ns: int, now_ns: int
) -> HistogramDataPoint:
    return HistogramDataPoint(
        attributes=attributes,
        start_time_unix_nano=start_ns,
        time_unix_nano=now_ns,
        count=counted.count,
        sum=counted.sum,
        bucket_counts=list(counted.buckets),
        explicit_bounds=list(counted.bounds),
        min=None,  # type: ignore[arg-type]  # not tracked; OTLP's min and max are optional
        max=None,  # type: ignore[arg-type]
    )


def _metric(name: str, description: str, unit: str, points: list[HistogramDataPoint]) -> Metric:
    return Metric(
        name=name,
        description=description,
        unit=unit,
        data=Histogram(data_points=points, aggregation_temporality=AggregationTemporality.CUMULATIVE),
    )


def _merged(histograms: Iterable[CountedHistogram]) -> CountedHistogram:
    merged: CountedHistogram | None = None
    for histogram in histograms:
        if merged is None:
            merged = CountedHistogram(histogram.bounds)
        merged.buckets = [a + b for a, b in zip(merged.buckets, histogram.buckets, strict=True)]
        merged.sum += histogram.sum
        merged.count += histogram.count
    assert merged is not None
    return merged


def genai_metrics_data(
    series: dict[GenAiKey, GenAiSeries], resource: Resource, start_ns: int, now_ns: int
) -> MetricsData:
    """The GenAI metrics of everything counted so far (cumulative since start_ns)."""
    server: list[HistogramDataPoint] = []
    client: list[HistogramDataPoint] = []
    first_token: list[HistogramDataPoint] = []
    by_request: dict[GenAiKey, list[GenAiSeries]] = {}
    for key, counted in series.items():
        with_error = _attributes(key, with_error=True)
        server.append(_point(with_error, counted.server_duration, start_ns, now_ns))
        if counted.client_duration.count:
            client.append(_point(with_error, counted.client_duration, start_ns, now_ns))
        if counted.time_to_first_token.count:
            first_token.append(_point(with_error, counted.time_to_first_token, start_ns, now_ns))
        if counted.input_tokens.count:
            by_request.setdefault((key[0], key[1], key[2], ""), []).append(counted)
    tokens: list[HistogramDataPoint] = []
    for key, group in by_request.items():
        attributes = _attributes(key, with_error=False)
        for token_type, histograms in (
            ("input", [s.input_tokens for s in group]),
            ("output", [s.output_tokens for s in group]),
        ):
            typed = {**attributes, "gen_ai.token.type": token_type}
            tokens.append(_point(typed, _merged(histograms), start_ns, now_ns))
    metrics = [
        _metric(
            "gen_ai.server.request.duration",
            "Time from a request's arrival at the gateway to the end of its answer.",
            "s",
            server,
        ),
        _metric(
            "gen_ai.client.operation.duration",
            "Time the gateway spent waiting for providers on a request (every attempt).",
            "s",
            client,
        ),
        _metric(
            "gen_ai.server.time_to_first_token",
            "Time from a streaming request's arrival to its first event.",
            "s",
            first_token,
        ),
        _metric("gen_ai.client.token.usage", "Input and output tokens per request.", "{token}", tokens),
    ]
    scope = ScopeMetrics(
        scope=InstrumentationScope("hydite.dataplane"),
        metrics=[m for m in metrics if m.data.data_points],
        schema_url="",
    )
    return MetricsData(
        resource_metrics=[ResourceMetrics(resource=resource, scope_metrics=[scope], schema_url="")]
    )


class GenAiMetricsExporter:
    """Exports the GenAI series of a RequestMetrics every interval, and once more at shutdown."""

    def __init__(
        self, metrics: RequestMetrics, url: str, interval_seconds: float, resource: Resource
    ) -> None:
        self._series = metrics.count_genai()
        self._start_ns = metrics.started_ns
        # Headers, timeout and compression come from the exporter's own OTEL_EXPORTER_OTLP_* variables.
        self._exporter = OTLPMetricExporter(endpoint=url)
        self._interval = interval_seconds
        self._resource = resource

    def snapshot(self) -> MetricsData:
        """What would be exported now (read on the event loop, where the series are counted)."""
        return genai_metrics_data(self._series, self._resource, self._start_ns, time.time_ns())

    async def export_once(self) -> None:
        """Send the series as they are now (the send runs in a worker thread)."""
        data = self.snapshot()
        if not data.resource_metrics[0].scope_metrics[0].metrics:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._exporter.export, data)
        except Exception as exc:  # the collector being away must not end the loop
            log.warning("GenAI metrics export failed (%s)", type(exc).__name__)

    async def run(self) -> None:
        """Export every interval until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            await self.export_once()

    async def close(self) -> None:
        """The last export, then the exporter's shutdown."""
        await self.export_once()
        await asyncio.get_running_loop().run_in_executor(None, self._exporter.shutdown)


@contextlib.asynccontextmanager
async def exporting_genai_metrics(
    settings: DataplaneSettings, metrics: RequestMetrics, node_id: str
) -> AsyncIterator[GenAiMetricsExporter | None]:
    """The GenAI metrics exported while the block runs, when an OTLP endpoint is set (None: not)."""
    url = metrics_url(settings)
    if not url:
        yield None
        return
    resource = Resource.create({"service.name": settings.otel_service_name, "service.instance.id": node_id})
    exporter = GenAiMetricsExporter(metrics, url, settings.metrics_export_interval_ms / 1000, resource)
    task = asyncio.create_task(exporter.run(), name="genai-metrics-export")
    try:
        yield exporter
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await exporter.close()
