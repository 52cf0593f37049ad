"""Prometheus metrics of the data plane, counted in plain dicts on the request path and written
out in the text exposition format only when `/metrics` is scraped.

A prometheus-client call per request costs several times more than a dict update; the numbers
are the same either way. The model label is bounded: a name that reached no deployment and that
no model group has (a 404, whatever a client sent) is counted under `OTHER_MODEL`, so a flood of
unique names cannot grow the label set.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

from hydite_common.pricing.compiled import DEFAULT_CURRENCY
from hydite_dataplane.request import InferenceRequest, Outcome

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds; the last bucket (+Inf) is implicit."""

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

OTHER_MODEL = "(unknown)"
"""The model label of requests for names no model group has."""


class Histogram:
    """Counts per bucket (not cumulative until written out), their sum and count."""

    __slots__ = ("buckets", "count", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        """Count one observation."""
        self.buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.sum += seconds
        self.count += 1


@dataclass(frozen=True, slots=True)
class Gauge:
    """A value read at scrape time."""

    name: str
    help: str
    kind: str  # "gauge" or "counter"
    read: Callable[[], float]


class RequestMetrics:
    """The post-call hook that counts every finished request."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str, int], int] = {}
        self.tokens: dict[tuple[str, str, str], int] = {}
        self.spend: dict[tuple[str, str], float] = {}
        self.spend_by_currency: dict[tuple[str, str, str], float] = {}
        self.unpriced: dict[tuple[str, str], int] = {}
        self.durations: dict[str, Histogram] = {}
        self.time_to_first_token: dict[str, Histogram] = {}
        self.gauges: list[Gauge] = []

    def after_call(self, request: InferenceRequest, outcome: Outcome) -> None:
        """Count the request, its tokens, its cost and how long it took."""
        model = request.requested_model or request.model
        target = outcome.target
        deployment = target.deployment_id if target is not None else ""
        duration = self.durations.get(model)
        if duration is None:
            # A name seen for the first time gets its own label only if it is a model group.
            if target is None and model not in request.caller.snapshot.model_groups:
                model = OTHER_MODEL
            duration = self.durations.get(model)
            if duration is None:
                duration = self.durations[model] = Histogram()
        labels = (model, deployment, request.operation, outcome.http_status)
        self.requests[labels] = self.requests.get(labels, 0) + 1
        duration.observe(time.perf_counter() - request.start_perf)
        if outcome.ttft_ms:
            ttft = self.time_to_first_token.get(model)
            if ttft is None:
                ttft = self.time_to_first_token[model] = Histogram()
            ttft.observe(outcome.ttft_ms / 1000)
        if target is None:
            return
        usage = outcome.usage
        if usage.prompt_tokens or usage.completion_tokens:
            prompt = (model, deployment, "prompt")
            completion = (model, deployment, "completion")
            self.tokens[prompt] = self.tokens.get(prompt, 0) + usage.prompt_tokens
            self.tokens[completion] = self.tokens.get(completion, 0) + usage.completion_tokens
        price = target.price
        if not price.known:
            unpriced = (model, target.provider)
            self.unpriced[unpriced] = self.unpriced.get(unpriced, 0) + 1
            return
        cost = price.cost(usage, request.start_time)
        if cost:
            if price.currency == DEFAULT_CURRENCY:
                self.spend[(model, deployment)] = self.spend.get((model, deployment), 0.0) + cost
            spent = (model, deployment, price.currency)
            self.spend_by_currency[spent] = self.spend_by_currency.get(spent, 0.0) + cost

    def add_gauge(self, name: str, help_text: str, read: Callable[[], float], kind: str = "gauge") -> None:
        """A value to read at scrape time (config version, pending usage batches, ...)."""
        self.gauges.append(Gauge(name, help_text, kind, read))

    def exposition(self) -> str:
        """Everything in Prometheus' text format."""
        lines: list[str] = []
        _family(
            lines,
            "hydite_requests_total",
            "Inference requests finished, by model group, deployment, operation and HTTP status.",
            "counter",
            (
                (f'model="{_label(m)}",deployment="{_label(d)}",operation="{o}",status="{s}"', n)
                for (m, d, o, s), n in self.requests.items()
            ),
        )
        _family(
            lines,
            "hydite_tokens_total",
            "Tokens the providers reported, by model group, deployment and kind.",
            "counter",
            (
                (f'model="{_label(m)}",deployment="{_label(d)}",kind="{k}"', n)
                for (m, d, k), n in self.tokens.items()
            ),
        )
        _family(
            lines,
            "hydite_spend_usd_total",
            "Cost of the requests priced in US dollars, at the deployments' prices.",
            "counter",
            ((f'model="{_label(m)}",deployment="{_label(d)}"', v) for (m, d), v in self.spend.items()),
        )
        _family(
            lines,
            "hydite_spend_total",
            "Cost of the requests at the deployments' prices, in each price's currency.",
            "counter",
            (
                (f'model="{_label(m)}",deployment="{_label(d)}",currency="{_label(c)}"', v)
                for (m, d, c), v in self.spend_by_currency.items()
            ),
        )
        _family(
            lines,
            "hydite_unpriced_requests_total",
            "Requests to a deployment whose model no price source knows and that sets no price "
            "(billed 0, cost_source unknown), by model group and provider.",
            "counter",
            ((f'model_group="{_label(m)}",provider="{_label(p)}"', n) for (m, p), n in self.unpriced.items()),
        )
        _histograms(
            lines,
            "hydite_request_duration_seconds",
            "Time from a request's arrival to its end, by model group.",
            self.durations,
        )
        _histograms(
            lines,
            "hydite_time_to_first_token_seconds",
            "Time from a streaming request's arrival to its first event, by model group.",
            self.time_to_first_token,
        )
        for gauge in self.gauges:
            _family(lines, gauge.name, gauge.help, gauge.kind, (("", gauge.read()),))
        return "\n".join(lines) + "\n"

    async def handle(self, request: web.Request) -> web.Response:
        """GET /metrics."""
        return web.Response(body=self.exposition().encode(), headers={"Content-Type": CONTENT_TYPE})


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _family(
    lines: list[str], name: str, help_text: str, kind: str, samples: Iterable[tuple[str, float]]
) -> None:
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        lines.append(f"{name}{{{labels}}} {_number(value)}" if labels else f"{name} {_number(value)}")


def _histograms(lines: list[str], name: str, help_text: str, histograms: dict[str, Histogram]) -> None:
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    for model, histogram in histograms.items():
        label = f'model="{_label(model)}"'
        cumulative = 0
        for bound, count in zip((*DURATION_BUCKETS, float("inf")), histogram.buckets, strict=True):
            cumulative += count
            shown = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'{name}_bucket{{{label},le="{shown}"}} {cumulative}')
        lines.append(f"{name}_sum{{{label}}} {_number(histogram.sum)}")
        lines.append(f"{name}_count{{{label}}} {histogram.count}")
