"""The control plane's /metrics (prometheus-client, one registry per app): admin requests by route
template, method and status and their latency, the config version, the data planes with a config
stream open here, snapshot build times, whether Postgres answers, and the budget tasks' counters.

Admin calls are few next to inference calls, so a middleware and labelled prometheus-client
children are cheap enough here; values owned by other objects are read at scrape time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hydite_common.http import Handler
from hydite_controlplane import budget_tasks
from hydite_controlplane.appkeys import CACHE, SESSIONS
from hydite_controlplane.db import run_sql

ADMIN_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SNAPSHOT_SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
DATABASE_CHECK_SECONDS = 1.0
UNMATCHED_ROUTE = "(unmatched)"
"""The route label of a path no route has (whatever it was: the label set stays bounded)."""


class _ReadAtScrape(Collector):
    """Gauges whose values live elsewhere, read when /metrics is scraped."""

    def __init__(self, metrics: ControlplaneMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        """The current values."""
        metrics = self._metrics
        for name, help_text, read in metrics.readings:
            family = GaugeMetricFamily(name, help_text)
            family.add_metric([], read())
            yield family


class ControlplaneMetrics:
    """The control plane's counters and histograms, and the gauges it reads at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.admin_requests = Counter(
            "hydite_admin_requests",
            "Admin API requests answered, by route template, method and HTTP status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.admin_seconds = Histogram(
            "hydite_admin_request_duration_seconds",
            "Time to answer an admin API request, by route template and method.",
            ("route", "method"),
            buckets=ADMIN_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.snapshot_seconds = Histogram(
            "hydite_config_snapshot_build_seconds",
            "Time to read and build config from Postgres: the whole snapshot (full) or a version's "
            "changes (delta).",
            ("kind",),
            buckets=SNAPSHOT_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.database_up = 0.0
        self.readings: list[tuple[str, str, Callable[[], float]]] = [
            (
                "hydite_controlplane_database_up",
                "1 when Postgres answered the last scrape's check, else 0.",
                lambda: self.database_up,
            ),
        ]
        self.registry.register(_ReadAtScrape(self))

    def read_at_scrape(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """A gauge whose value is read at each scrape."""
        self.readings.append((name, help_text, read))

    def snapshot_built(self, kind: str, seconds: float) -> None:
        """The config follower built a full snapshot or a delta in seconds."""
        self.snapshot_seconds.labels(kind).observe(seconds)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count and time every admin request (outermost: it sees the status errors were rendered with)."""
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else UNMATCHED_ROUTE
            self.admin_requests.labels(route, request.method, str(status)).inc()
            self.admin_seconds.labels(route, request.method).observe(time.perf_counter() - started)

    async def handle(self, request: web.Request) -> web.Response:
        """GET /metrics."""
        self.database_up = float(await _database_answers(request.app))
        text = (
            generate_latest(self.registry).decode() + "\n".join(budget_tasks.metric_lines(request.app)) + "\n"
        )
        return web.Response(text=text, content_type="text/plain")


async def _database_answers(app: web.Application) -> bool:
    sessions = app.get(SESSIONS)
    if sessions is None:
        return False
    try:
        async with asyncio.timeout(DATABASE_CHECK_SECONDS), sessions() as session:
            await run_sql(session, "SELECT 1")
    except Exception:
        return False
    return True


CONTROLPLANE_METRICS = web.AppKey("controlplane_metrics", ControlplaneMetrics)


def install(app: web.Application, metrics: ControlplaneMetrics) -> None:
    """Serve the metrics (whose middleware is first in the app's list) on GET /metrics, with the
    config version gauges."""
    app[CONTROLPLANE_METRICS] = metrics
    metrics.read_at_scrape(
        "hydite_controlplane_config_version",
        "The head config version this replica serves.",
        lambda: app[CACHE].version if CACHE in app else 0,
    )
    metrics.read_at_scrape(
        "hydite_controlplane_config_resources",
        "Resources in the head config snapshot.",
        lambda: app[CACHE].resource_count() if CACHE in app else 0,
    )
    app.router.add_get("/metrics", metrics.handle)
