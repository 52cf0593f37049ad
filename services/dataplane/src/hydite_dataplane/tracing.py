"""OpenTelemetry traces for sampled requests only.

An unsampled request costs one header lookup: the span of a sampled one is made when the
request has finished, from the timestamps the request path keeps anyway, and exported over
OTLP/HTTP by a background thread. A request is traced when its W3C `traceparent` says
sampled, or, without one, when the configured ratio picks it (as a new trace). Spans carry
the GenAI semantic-convention attributes, never a key or a prompt.
"""

from __future__ import annotations

import random
import time

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from hydite_dataplane.request import InferenceRequest, Outcome

TRACEPARENT_LENGTH = 55  # 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>
NEW_TRACE = ""


class RequestTracer:
    """Decides which requests are traced, and records their span once they finish (a post-call hook)."""

    def __init__(self, endpoint: str, sample_ratio: float, node_id: str) -> None:
        resource = Resource.create({"service.name": "hydite-dataplane", "service.instance.id": node_id})
        self._provider = TracerProvider(resource=resource)
        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
        self._provider.add_span_processor(BatchSpanProcessor(exporter))
        self._tracer = self._provider.get_tracer("hydite.dataplane")
        self._propagator = TraceContextTextMapPropagator()
        self._sample_ratio = sample_ratio
        self._random = random.Random()

    def trace_parent(self, traceparent: str | None) -> str | None:
        """The parent to trace a request under (NEW_TRACE for a root), or None: not traced."""
        if traceparent is not None and len(traceparent) == TRACEPARENT_LENGTH:
            try:
                sampled = int(traceparent[-2:], 16) & 1
            except ValueError:
                sampled = 0
            return traceparent if sampled else None
        if self._sample_ratio and self._random.random() < self._sample_ratio:
            return NEW_TRACE
        return None

    def after_call(self, request: InferenceRequest, outcome: Outcome) -> None:
        """Record the span of a traced request."""
        if request.trace_parent is None:
            return
        parent: Context | None = (
            self._propagator.extract({"traceparent": request.trace_parent}) if request.trace_parent else None
        )
        target = outcome.target
        model = request.requested_model or request.model
        span = self._tracer.start_span(
            f"{request.operation} {model}",
            context=parent,
            kind=SpanKind.SERVER,
            start_time=int(request.start_time * 1e9),
        )
        usage = outcome.usage
        span.set_attributes(
            {
                "gen_ai.operation.name": request.operation,
                "gen_ai.request.model": model,
                "gen_ai.provider.name": target.provider if target else "",
                "gen_ai.response.model": target.upstream_model if target else "",
                "gen_ai.usage.input_tokens": usage.prompt_tokens,
                "gen_ai.usage.output_tokens": usage.completion_tokens,
                "http.response.status_code": outcome.http_status,
                "hydite.request_id": request.request_id,
                "hydite.deployment_id": target.deployment_id if target else "",
                "hydite.model_group": request.model,
                "hydite.attempts": request.attempts,
                "hydite.stream": request.stream,
                "hydite.time_to_first_token_ms": outcome.ttft_ms,
                "hydite.team_id": request.key.team_id,
                "hydite.user_id": request.key.user_id,
            }
        )
        if outcome.status != "success":
            span.set_attribute("error.type", outcome.error_code or str(outcome.http_status))
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=time.time_ns())

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporter thread (blocks; run off the loop)."""
        self._provider.shutdown()
