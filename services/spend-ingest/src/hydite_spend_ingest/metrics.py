"""spend-ingest's histograms and lag (prometheus-client, one registry per consumer): events per
written transaction, how long each write took, how far behind the newest event ingest was when it
wrote, messages JetStream delivered again, and what the durable consumer still has to deliver."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BATCH_EVENT_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000)
WRITE_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class IngestMetrics:
    """What the consumer observes as it writes, exported on /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.batch_events = Histogram(
            "hydite_ingest_batch_events",
            "Usage events per written transaction (one fetch of JetStream messages).",
            buckets=BATCH_EVENT_BUCKETS,
            registry=self.registry,
        )
        self.write_seconds = Histogram(
            "hydite_ingest_write_seconds",
            "How long a transaction writing usage took, commit included.",
            buckets=WRITE_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.redeliveries = Counter(
            "hydite_ingest_redeliveries",
            "Usage messages JetStream delivered more than once (a write failed, or its ack was lost).",
            registry=self.registry,
        )
        self.lag_seconds = Gauge(
            "hydite_ingest_lag_seconds",
            "At the last write: seconds between the newest event's end and its commit.",
            registry=self.registry,
        )
        self.pending = Gauge(
            "hydite_ingest_pending_messages",
            "Usage messages the durable consumer has not delivered yet (read at scrape time).",
            registry=self.registry,
        )
        self.ack_pending = Gauge(
            "hydite_ingest_ack_pending_messages",
            "Usage messages delivered and not yet acknowledged (read at scrape time).",
            registry=self.registry,
        )

    def written(self, events: int, seconds: float, newest_end_ms: float) -> None:
        """A transaction of events committed after seconds; newest_end_ms: its newest event's end."""
        self.batch_events.observe(events)
        self.write_seconds.observe(seconds)
        if newest_end_ms:
            self.lag_seconds.set(max(0.0, time.time() - newest_end_ms / 1000))

    def exposition(self) -> str:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry).decode()
