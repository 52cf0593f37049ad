"""Prometheus metrics of the data plane, counted in plain dicts on the request path and written
out in the text exposition format only when `/metrics` is scraped.

A prometheus-client call per request costs several times more than a dict update; the numbers
are the same either way. Every label is bounded: a model name that reached no deployment and that
no model group has (a 404, whatever a client sent) is counted under `OTHER_MODEL`, and key aliases
and error codes (a provider's own) beyond the first few hundred under `OTHER_LABEL`, so a flood of
unique values cannot grow the label set. Key hashes and keys are never labels.

The GenAI series (by operation, provider, model and error) are counted only when they are
exported over OTLP (`genai_metrics`).
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
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
"""Seconds of the gateway's own time per request: mostly well under a millisecond."""
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
"""Tokens of one request (the GenAI conventions' advice for gen_ai.client.token.usage)."""

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

OTHER_MODEL = "(unknown)"
"""The model label of requests for names no model group has."""
OTHER_LABEL = "(other)"
"""The label of a value seen after a bounded label's first distinct values."""
MAX_ERROR_CODES = 200

LIMIT_KINDS = {
    "rpm_limit_exceeded": "rpm",
    "tpm_limit_exceeded": "tpm",
    "max_parallel_requests_exceeded": "parallel",
    "budget_exceeded": "budget",
    "rate_limit_exceeded": "deployment",
}
"""The limit kind of each code the gateway's own limits refuse with (a refusal is told from a
provider's 429 by having reached no deployment)."""


class Histogram:
    """Counts per bucket (not cumulative until written out), their sum and count."""

    __slots__ = ("bounds", "buckets", "count", "sum")

    def __init__(self, bounds: tuple[float, ...] = DURATION_BUCKETS) -> None:
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        """Count one observation."""
        self.buckets[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1


class BoundedLabel:
    """A label's values: each of the first `limit` distinct ones as it is, later ones as OTHER_LABEL."""

    __slots__ = ("_known", "_limit")

    def __init__(self, limit: int) -> None:
        self._known: dict[str, str] = {}
        self._limit = limit

    def of(self, value: str) -> str:
        """The label value to count value under."""
        label = self._known.get(value)
        if label is None:
            if len(self._known) >= self._limit:
                return OTHER_LABEL
            label = self._known[value] = value
        return label


class KeyTotals:
    """What the keys of one alias label did: requests by HTTP status, tokens, US dollars."""

    __slots__ = ("completion_tokens", "prompt_tokens", "requests", "spend_usd")

    def __init__(self) -> None:
        self.requests: dict[int, int] = {}
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.spend_usd = 0.0


MAX_KEYS_REMEMBERED = 100_000
"""Key hashes whose alias label is remembered (a cache, forgotten whole when full)."""


class GenAiSeries:
    """What the GenAI metrics of one (operation, provider, model, error) say, counted as requests end."""

    __slots__ = ("client_duration", "input_tokens", "output_tokens", "server_duration", "time_to_first_token")

    def __init__(self) -> None:
        self.server_duration = Histogram()
        self.client_duration = Histogram()
        self.time_to_first_token = Histogram()
        self.input_tokens = Histogram(TOKEN_BUCKETS)
        self.output_tokens = Histogram(TOKEN_BUCKETS)


GenAiKey = tuple[str, str, str, str]
"""(operation, provider, requested model, error code or "")."""


@dataclass(frozen=True, slots=True)
class Gauge:
    """A value read at scrape time."""

    name: str
    help: str
    kind: str  # "gauge" or "counter"
    read: Callable[[], float]


Samples = Callable[[], Iterable[tuple[str, float]]]
"""Read at scrape time: (label text, value) pairs, the label text made with `labels()`."""


@dataclass(frozen=True, slots=True)
class LabelledFamily:
    """A family of labelled values read at scrape time (per-deployment statistics, ...)."""

    name: str
    help: str
    kind: str
    read: Samples


class RequestMetrics:
    """The post-call hook that counts every finished request."""

    def __init__(self, *, max_key_aliases: int = 100) -> None:
        self.requests: dict[tuple[str, str, str, str, int], int] = {}
        self.tokens: dict[tuple[str, str, str], int] = {}
        self.spend: dict[tuple[str, str], float] = {}
        self.spend_by_currency: dict[tuple[str, str, str], float] = {}
        self.unpriced: dict[tuple[str, str], int] = {}
        self.durations: dict[str, Histogram] = {}
        self.time_to_first_token: dict[str, Histogram] = {}
        self.overhead = Histogram(OVERHEAD_BUCKETS)
        self.errors: dict[tuple[str, str, str], int] = {}
        self.limit_rejections: dict[tuple[str, str], int] = {}
        self.retries: dict[str, int] = {}
        self.fallbacks: dict[str, int] = {}
        self.keys: dict[str, KeyTotals] = {}
        """By key alias label."""
        self._key_totals: dict[str, tuple[str, KeyTotals]] = {}
        """By key hash, with the alias they were found for (a key's alias may change)."""
        self.genai: dict[GenAiKey, GenAiSeries] | None = None
        """Counted only once `count_genai()` was called (an OTLP metrics exporter reads them)."""
        self.started_ns = time.time_ns()
        self.gauges: list[Gauge] = []
        self.families: list[LabelledFamily] = []
        self._key_aliases = BoundedLabel(max_key_aliases)
        self._error_codes = BoundedLabel(MAX_ERROR_CODES)

    def count_genai(self) -> dict[GenAiKey, GenAiSeries]:
        """Start counting the GenAI series; their map (read it, never write it)."""
        if self.genai is None:
            self.genai = {}
        return self.genai

    def after_call(self, request: InferenceRequest, outcome: Outcome) -> None:
        """Count the request, its tokens, its cost, how long it took and how it failed."""
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
        status = outcome.http_status
        provider = target.provider if target is not None else ""
        labels = (model, deployment, provider, request.operation, status)
        self.requests[labels] = self.requests.get(labels, 0) + 1
        seconds = time.perf_counter() - request.start_perf
        duration.observe(seconds)
        alias = request.caller.key.key_alias
        known = self._key_totals.get(request.caller.key_hash)
        key = known[1] if known is not None and known[0] == alias else self._totals_of(request, alias)
        key.requests[status] = key.requests.get(status, 0) + 1
        if request.overhead_seconds >= 0:
            self.overhead.observe(request.overhead_seconds)
        if outcome.ttft_ms:
            ttft = self.time_to_first_token.get(model)
            if ttft is None:
                ttft = self.time_to_first_token[model] = Histogram()
            ttft.observe(outcome.ttft_ms / 1000)
        code = ""
        if outcome.status != "success":
            code = self._error_codes.of(outcome.error_code)
            error = (model, outcome.error_type, code)
            self.errors[error] = self.errors.get(error, 0) + 1
            if target is None and status == 429:
                refusal = (model, LIMIT_KINDS.get(outcome.error_code, "other"))
                self.limit_rejections[refusal] = self.limit_rejections.get(refusal, 0) + 1
        if request.attempts > 1:
            retries = request.attempts - 1 - request.fallbacks
            if retries > 0:
                self.retries[model] = self.retries.get(model, 0) + retries
        if request.fallbacks:
            self.fallbacks[model] = self.fallbacks.get(model, 0) + request.fallbacks
        if self.genai is not None:
            self._count_genai(request, outcome, model, provider, code, seconds)
        if target is None:
            return
        usage = outcome.usage
        if usage.prompt_tokens or usage.completion_tokens:
            prompt = (model, deployment, "prompt")
            completion = (model, deployment, "completion")
            self.tokens[prompt] = self.tokens.get(prompt, 0) + usage.prompt_tokens
            self.tokens[completion] = self.tokens.get(completion, 0) + usage.completion_tokens
            key.prompt_tokens += usage.prompt_tokens
            key.completion_tokens += usage.completion_tokens
        price = target.price
        if not price.known:
            unpriced = (model, target.provider)
            self.unpriced[unpriced] = self.unpriced.get(unpriced, 0) + 1
            return
        cost = price.cost(usage, request.start_time)
        if cost:
            if price.currency == DEFAULT_CURRENCY:
                self.spend[(model, deployment)] = self.spend.get((model, deployment), 0.0) + cost
                key.spend_usd += cost
            spent = (model, deployment, price.currency)
            self.spend_by_currency[spent] = self.spend_by_currency.get(spent, 0.0) + cost

    def _totals_of(self, request: InferenceRequest, alias: str) -> KeyTotals:
        """The totals a key of alias counts in, remembered by its hash."""
        if len(self._key_totals) >= MAX_KEYS_REMEMBERED:
            self._key_totals.clear()
        label = self._key_aliases.of(alias)
        totals = self.keys.get(label)
        if totals is None:
            totals = self.keys[label] = KeyTotals()
        self._key_totals[request.caller.key_hash] = (alias, totals)
        return totals

    def _count_genai(
        self,
        request: InferenceRequest,
        outcome: Outcome,
        model: str,
        provider: str,
        code: str,
        seconds: float,
    ) -> None:
        assert self.genai is not None
        key = (request.operation, provider, model, code)
        series = self.genai.get(key)
        if series is None:
            series = self.genai[key] = GenAiSeries()
        series.server_duration.observe(seconds)
        if outcome.target is None:
            return
        series.client_duration.observe(request.upstream_seconds)
        if outcome.ttft_ms:
            series.time_to_first_token.observe(outcome.ttft_ms / 1000)
        usage = outcome.usage
        if usage.prompt_tokens or usage.completion_tokens:
            series.input_tokens.observe(usage.prompt_tokens)
            series.output_tokens.observe(usage.completion_tokens)

    def add_gauge(self, name: str, help_text: str, read: Callable[[], float], kind: str = "gauge") -> None:
        """A value to read at scrape time (config version, pending usage batches, ...)."""
        self.gauges.append(Gauge(name, help_text, kind, read))

    def add_family(self, name: str, help_text: str, read: Samples, kind: str = "gauge") -> None:
        """Labelled values to read at scrape time (per-deployment statistics, ...)."""
        self.families.append(LabelledFamily(name, help_text, kind, read))

    def exposition(self) -> str:
        """Everything in Prometheus' text format."""
        lines: list[str] = []
        _family(
            lines,
            "hydite_requests_total",
            "Inference requests finished, by model group, deployment, provider, operation and HTTP status.",
            "counter",
            (
                (
                    f'model="{_label(m)}",deployment="{_label(d)}",provider="{_label(p)}",'
                    f'operation="{o}",status="{s}"',
                    n,
                )
                for (m, d, p, o, s), n in self.requests.items()
            ),
        )
        _family(
            lines,
            "hydite_errors_total",
            "Failed requests, by model group and OpenAI error type and code.",
            "counter",
            (
                (f'model="{_label(m)}",type="{_label(t)}",code="{_label(c)}"', n)
                for (m, t, c), n in self.errors.items()
            ),
        )
        _family(
            lines,
            "hydite_limit_rejections_total",
            "Requests the gateway's own limits refused (429), by model group and limit kind "
            "(rpm, tpm, parallel, budget, deployment).",
            "counter",
            ((f'model="{_label(m)}",limit="{k}"', n) for (m, k), n in self.limit_rejections.items()),
        )
        _family(
            lines,
            "hydite_retries_total",
            "Attempts made again on the same model group after a failure, by the model asked for.",
            "counter",
            ((f'model="{_label(m)}"', n) for m, n in self.retries.items()),
        )
        _family(
            lines,
            "hydite_fallbacks_total",
            "Moves to a fallback model group, by the model asked for.",
            "counter",
            ((f'model="{_label(m)}"', n) for m, n in self.fallbacks.items()),
        )
        _family(
            lines,
            "hydite_key_requests_total",
            "Inference requests finished, by key alias (the first aliases seen; later ones as "
            f"{OTHER_LABEL}) and HTTP status.",
            "counter",
            (
                (f'key_alias="{_label(a)}",status="{s}"', n)
                for a, totals in self.keys.items()
                for s, n in totals.requests.items()
            ),
        )
        _family(
            lines,
            "hydite_key_tokens_total",
            "Tokens the providers reported, by key alias and kind.",
            "counter",
            (
                (f'key_alias="{_label(a)}",kind="{k}"', n)
                for a, totals in self.keys.items()
                if totals.prompt_tokens or totals.completion_tokens
                for k, n in (("prompt", totals.prompt_tokens), ("completion", totals.completion_tokens))
            ),
        )
        _family(
            lines,
            "hydite_key_spend_usd_total",
            "Cost of the requests priced in US dollars, by key alias.",
            "counter",
            ((f'key_alias="{_label(a)}"', t.spend_usd) for a, t in self.keys.items() if t.spend_usd),
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
        _histogram(
            lines,
            "hydite_gateway_overhead_seconds",
            "The gateway's own time per request, not spent waiting for providers (x-hydite-overhead-ms).",
            "",
            self.overhead,
        )
        for gauge in self.gauges:
            _family(lines, gauge.name, gauge.help, gauge.kind, (("", gauge.read()),))
        for family in self.families:
            _family(lines, family.name, family.help, family.kind, family.read())
        return "\n".join(lines) + "\n"

    async def handle(self, request: web.Request) -> web.Response:
        """GET /metrics."""
        return web.Response(body=self.exposition().encode(), headers={"Content-Type": CONTENT_TYPE})


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labels(**values: str) -> str:
    """The label text of a sample: name="value" pairs, escaped."""
    return ",".join(f'{name}="{_label(value)}"' for name, value in values.items())


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
        _samples(lines, name, f'model="{_label(model)}"', histogram)


def _histogram(lines: list[str], name: str, help_text: str, label: str, histogram: Histogram) -> None:
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    _samples(lines, name, label, histogram)


def _samples(lines: list[str], name: str, label: str, histogram: Histogram) -> None:
    cumulative = 0
    prefix = f"{label}," if label else ""
    for bound, count in zip((*histogram.bounds, float("inf")), histogram.buckets, strict=True):
        cumulative += count
        shown = "+Inf" if bound == float("inf") else repr(bound)
        lines.append(f'{name}_bucket{{{prefix}le="{shown}"}} {cumulative}')
    if label:
        lines.append(f"{name}_sum{{{label}}} {_number(histogram.sum)}")
        lines.append(f"{name}_count{{{label}}} {histogram.count}")
    else:
        lines.append(f"{name}_sum {_number(histogram.sum)}")
        lines.append(f"{name}_count {histogram.count}")
