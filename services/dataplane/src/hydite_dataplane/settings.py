"""Typed settings of the data plane (HYDITE_* environment variables)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from hydite_common.grpc_keepalive import GrpcKeepaliveSettings
from hydite_common.settings import BaseServiceSettings, ConfigTokenSettings, SaltKeySettings


class DataplaneSettings(BaseServiceSettings, SaltKeySettings, ConfigTokenSettings, GrpcKeepaliveSettings):
    """Everything the data plane reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="HYDITE_", extra="ignore")

    port: int = 4000
    max_connections: int = Field(default=0, ge=0)
    """Client connections open at once; more are refused with a 503 (0: half of what the open-file
    limit leaves, the other half being for provider connections)."""
    client_idle_timeout_seconds: float = Field(default=75.0, gt=0)
    """How long a connection may wait, idle or before its first request's head, before it is closed."""
    request_body_timeout_seconds: float = Field(default=60.0, gt=0)
    """How long a request's body may take to arrive once its head has (408 after)."""
    drain_seconds: float = Field(default=15.0, ge=0)
    """At shutdown, how long requests and streams in flight may take to finish; the rest are cut,
    and billed for what they used."""
    usage_drain_seconds: float = Field(default=5.0, ge=0)
    """At shutdown, after the drain, how long the last usage batches may take to reach JetStream."""
    controlplane_grpc: str = "127.0.0.1:50051"
    controlplane_url: str = "http://127.0.0.1:4001"
    max_request_body_mb: int = 32
    max_admin_body_kb: int = Field(default=1024, ge=1)
    """The largest admin request body forwarded to the control plane (413 beyond)."""
    upstream_timeout_seconds: float = 600.0
    upstream_connect_timeout_seconds: float = 10.0
    gc_young_threshold: int = Field(default=20_000, ge=100)
    """Objects that may pile up before the young generation is collected (CPython's default is
    700, which collected it every couple of requests)."""
    usage_flush_ms: float = 50.0
    """How long usage events gather before they go out as one JetStream message: a publish
    costs a few hundred microseconds of CPU, so fewer and larger batches leave more for requests."""
    usage_batch_max_events: int = 500
    usage_outbox_max_batches: int = 20_000
    usage_spool_dir: str = ""
    """Where usage batches wait on disk while NATS is away, and the emitted-events tally lives
    (empty: `hydite-usage-spool/<node id>` in the system's temp directory). Give a restarted data
    plane the same directory (on Kubernetes, a volume that outlives the container) and it replays
    what its predecessor left."""
    usage_spool_max_mb: int = Field(default=1024, ge=1)
    """The most the spool holds; past it batches wait in memory (`usage_outbox_max_batches`)."""
    limits_gossip_interval_ms: float = Field(default=100.0, ge=10.0, le=5_000.0)
    """How often each data plane tells its peers what it uses of every limit and rebalances shares."""
    limits_fallback: Literal["share", "local"] = "share"
    """With NATS lost: "share" admits by limit / known replicas on each one (the cluster stays within
    the limit); "local" lets each replica admit the whole limit alone."""
    limits_epoch_seconds: float = Field(default=30.0, ge=1.0, le=3_600.0)
    """How often shares start over from what each replica uses (idle state is forgotten)."""
    limits_peer_timeout_ms: float = Field(default=2_000.0, ge=100.0)
    """A peer unheard for this long gets no more of this replica's shares."""
    tpm_default_output_tokens: int = Field(default=256, ge=1)
    """Output tokens a tokens-per-minute reservation assumes for a request without max_tokens."""
    budget_default_reservation: float = Field(default=0.05, gt=0)
    """What a request reserves of its budgets when its cost cannot be estimated (no price known)."""
    stream_drain_max_seconds: float = 120.0
    stream_drain_max_bytes: int = 16 * 1024 * 1024
    num_retries: int = 2
    retry_backoff_base_seconds: float = 0.1
    retry_backoff_max_seconds: float = 2.0
    max_retry_after_seconds: float = 5.0
    cooldown_allowed_fails: int = 3
    cooldown_window_seconds: float = 60.0
    cooldown_seconds: float = 5.0
    expose_docs: bool = Field(
        default=False, validation_alias=AliasChoices("EXPOSE_DOCS", "HYDITE_EXPOSE_DOCS")
    )
    """Serve Swagger UI at /docs (LiteLLM's EXPOSE_DOCS); /openapi.json is served either way."""
    tracing_otlp_endpoint: str = Field(
        default="",
        validation_alias=AliasChoices("HYDITE_TRACING_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    )
    """OTLP/HTTP collector base URL (`/v1/traces` and `/v1/metrics` are added); empty: no export
    unless a signal's own endpoint is set."""
    tracing_otlp_traces_endpoint: str = Field(
        default="",
        validation_alias=AliasChoices(
            "HYDITE_TRACING_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        ),
    )
    """The full OTLP/HTTP URL spans go to (wins over the base URL)."""
    metrics_otlp_endpoint: str = Field(
        default="",
        validation_alias=AliasChoices("HYDITE_METRICS_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
    )
    """The full OTLP/HTTP URL the GenAI metrics go to (wins over the base URL)."""
    metrics_export_interval_ms: float = Field(
        default=60_000.0,
        gt=0,
        validation_alias=AliasChoices("HYDITE_METRICS_EXPORT_INTERVAL_MS", "OTEL_METRIC_EXPORT_INTERVAL"),
    )
    """How often the GenAI metrics are exported over OTLP."""
    otel_service_name: str = Field(
        default="hydite-dataplane",
        validation_alias=AliasChoices("HYDITE_OTEL_SERVICE_NAME", "OTEL_SERVICE_NAME"),
    )
    """service.name of the exported spans and metrics."""
    tracing_sampler: str = Field(
        default="parentbased_traceidratio",
        validation_alias=AliasChoices("HYDITE_TRACING_SAMPLER", "OTEL_TRACES_SAMPLER"),
    )
    """OpenTelemetry's sampler names: *always_off traces nothing, *always_on every request, and
    *traceidratio the sample ratio of requests without a sampled traceparent (one with it is
    always traced, unless always_off)."""
    tracing_sample_ratio: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        validation_alias=AliasChoices("HYDITE_TRACING_SAMPLE_RATIO", "OTEL_TRACES_SAMPLER_ARG"),
    )
    """Share of requests without a traceparent that start a new trace."""
    metrics_max_key_aliases: int = Field(default=100, ge=0)
    """Key aliases /metrics names; requests of keys beyond the first this many are counted under
    "(other)", so the label set stays bounded however many keys there are."""
