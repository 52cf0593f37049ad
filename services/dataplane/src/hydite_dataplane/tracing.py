"""OpenTelemetry traces for sampled requests only, following the GenAI semantic conventions.

An unsampled request costs one header lookup (its traceparent, if any, passes to the providers
unchanged). A request is traced when its W3C `traceparent` says sampled, or, without one, when
the configured ratio picks it (as a new trace). Its span ids are chosen when it arrives, so the
providers are sent a traceparent whose parent is the gateway's span; the span itself is made when
the request has finished, from the timestamps the request path keeps anyway, and exported over
OTLP/HTTP by a background thread. Spans never carry a key or a prompt.
"""

from __future__ import annotations

import random
import time
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from hydite_dataplane.request import InferenceRequest, Outcome
from hydite_dataplane.semconv import operation_name, provider_name
from hydite_dataplane.settings import DataplaneSettings

TRACEPARENT_LENGTH = 55  # 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>
NEW_TRACE = ""
SAMPLERS_OFF = frozenset({"always_off", "parentbased_always_off"})
SAMPLERS_ON = frozenset({"always_on", "parentbased_always_on"})
REQUEST_PARAMETERS = (
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("top_k", "gen_ai.request.top_k"),
    ("frequency_penalty", "gen_ai.request.frequency_penalty"),
    ("presence_penalty", "gen_ai.request.presence_penalty"),
    ("seed", "gen_ai.request.seed"),
)
"""Numeric request parameters a span names, and their attributes."""


def otlp_url(base: str, signal: str) -> str:
    """The OTLP/HTTP URL of a signal ("traces", "metrics") under a collector's base URL."""
    return f"{base.rstrip('/')}/v1/{signal}"


def traces_url(settings: DataplaneSettings) -> str:
    """Where spans go ("": nowhere, tracing is off)."""
    if settings.tracing_sampler in SAMPLERS_OFF:
        return ""
    if settings.tracing_otlp_traces_endpoint:
        return settings.tracing_otlp_traces_endpoint
    return otlp_url(settings.tracing_otlp_endpoint, "traces") if settings.tracing_otlp_endpoint else ""


class _ChosenIds(IdGenerator):
    """Hands the tracer the ids chosen when the request arrived (providers were sent its span id)."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def generate_span_id(self) -> int:
        """The chosen span id."""
        return self.span_id

    def generate_trace_id(self) -> int:
        """The chosen trace id (of a new trace)."""
        return self.trace_id


class RequestTracer:
    """Decides which requests are traced, and records their span once they finish (a post-call hook)."""

    def __init__(
        self, url: str, sample_ratio: float, node_id: str, service_name: str = "hydite-dataplane"
    ) -> None:
        resource = Resource.create({"service.name": service_name, "service.instance.id": node_id})
        self._ids = _ChosenIds()
        # The request was sampled already: the SDK must not sample again (OTEL_TRACES_SAMPLER).
        self._provider = TracerProvider(resource=resource, sampler=ALWAYS_ON, id_generator=self._ids)
        # Headers, timeout and compression come from the exporter's own OTEL_EXPORTER_OTLP_* variables.
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
        self._tracer = self._provider.get_tracer("hydite.dataplane")
        self._propagator = TraceContextTextMapPropagator()
        self._sample_ratio = sample_ratio
        self._random = random.Random()

    @classmethod
    def of(cls, settings: DataplaneSettings, node_id: str) -> RequestTracer | None:
        """The tracer the settings ask for (None: tracing is off)."""
        url = traces_url(settings)
        if not url:
            return None
        ratio = 1.0 if settings.tracing_sampler in SAMPLERS_ON else settings.tracing_sample_ratio
        return cls(url, ratio, node_id, settings.otel_service_name)

    def decide(self, request: InferenceRequest, traceparent: str | None) -> None:
        """Whether the request is traced (its `trace_parent`), and the traceparent its provider
        calls carry (`upstream_traceparent`)."""
        if traceparent is not None and len(traceparent) == TRACEPARENT_LENGTH:
            try:
                sampled = int(traceparent[-2:], 16) & 1 and int(traceparent[3:35], 16) != 0
            except ValueError:
                return
            if not sampled:
                request.upstream_traceparent = traceparent
                return
            request.trace_parent = traceparent
            trace_id = traceparent[3:35]
        elif self._sample_ratio and self._random.random() < self._sample_ratio:
            request.trace_parent = NEW_TRACE
            trace_id = f"{self._random.getrandbits(128) or 1:032x}"
        else:
            return
        request.upstream_traceparent = f"00-{trace_id}-{self._random.getrandbits(64) or 1:016x}-01"

    def after_call(self, request: InferenceRequest, outcome: Outcome) -> None:
        """Record the span of a traced request."""
        if request.trace_parent is None or request.upstream_traceparent is None:
            return
        # An empty context for a new trace: never whatever span might be current.
        parent = (
            self._propagator.extract({"traceparent": request.trace_parent})
            if request.trace_parent
            else Context()
        )
        own = request.upstream_traceparent
        self._ids.trace_id = int(own[3:35], 16)
        self._ids.span_id = int(own[36:52], 16)
        model = request.requested_model or request.model
        operation = operation_name(request.operation)
        span = self._tracer.start_span(
            f"{operation} {model}",
            context=parent,
            kind=SpanKind.SERVER,
            start_time=int(request.start_time * 1e9),
        )
        span.set_attributes(span_attributes(request, outcome, operation, model))
        if outcome.status != "success":
            span.set_attribute("error.type", outcome.error_code or str(outcome.http_status))
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=time.time_ns())

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporter thread (blocks; run off the loop)."""
        self._provider.shutdown()


def span_attributes(
    request: InferenceRequest, outcome: Outcome, operation: str, model: str
) -> dict[str, Any]:
    """The GenAI semantic-convention attributes of a finished request's span (and the gateway's
    own, `hydite.*`): ids, models, provider, usage and parameters, never a key or a prompt."""
    target = outcome.target
    usage = outcome.usage
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.request.model": model,
        "gen_ai.request.stream": request.stream,
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
        "http.response.status_code": outcome.http_status,
        "hydite.request_id": request.request_id,
        "hydite.model_group": request.model,
        "hydite.attempts": request.attempts,
        "hydite.stream": request.stream,
        "hydite.time_to_first_token_ms": outcome.ttft_ms,
        "hydite.team_id": request.key.team_id,
        "hydite.user_id": request.key.user_id,
    }
    if request.overhead_seconds >= 0:
        attributes["hydite.overhead_ms"] = request.overhead_seconds * 1000
    if target is not None:
        attributes["gen_ai.provider.name"] = provider_name(target.provider)
        attributes["gen_ai.response.model"] = target.upstream_model
        attributes["hydite.deployment_id"] = target.deployment_id
        address = urlsplit(target.api_base) if target.api_base else None
        if address is not None and address.hostname:
            attributes["server.address"] = address.hostname
            try:
                port = address.port
            except ValueError:
                port = None
            if port is not None:
                attributes["server.port"] = port
    if usage.cached_tokens:
        attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached_tokens
    if usage.cache_write_tokens:
        attributes["gen_ai.usage.cache_creation.input_tokens"] = usage.cache_write_tokens
    if usage.reasoning_tokens:
        attributes["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning_tokens
    if outcome.ttft_ms:
        attributes["gen_ai.response.time_to_first_chunk"] = outcome.ttft_ms / 1000
    if outcome.response_id:
        attributes["gen_ai.response.id"] = outcome.response_id
    finish_reasons = _finish_reasons(outcome.answer)
    if finish_reasons:
        attributes["gen_ai.response.finish_reasons"] = finish_reasons
    body = request.body
    for parameter, attribute in REQUEST_PARAMETERS:
        value = body.get(parameter)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[attribute] = value
    if "max_tokens" not in body and isinstance(limit := body.get("max_completion_tokens"), int):
        attributes["gen_ai.request.max_tokens"] = limit
    choices = body.get("n")
    if isinstance(choices, int) and not isinstance(choices, bool) and choices != 1:
        attributes["gen_ai.request.choice.count"] = choices
    return attributes


def _finish_reasons(answer: dict[str, Any] | None) -> list[str]:
    """The finish reasons of a complete answer the request path kept (OpenAI's choices, or
    Anthropic's stop_reason)."""
    if not answer:
        return []
    choices = answer.get("choices")
    if isinstance(choices, list):
        return [str(c["finish_reason"]) for c in choices if isinstance(c, dict) and c.get("finish_reason")]
    stop = answer.get("stop_reason")
    return [str(stop)] if isinstance(stop, str) else []
