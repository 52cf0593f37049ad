"""What the proxy benchmark measured and how it is reported: scenarios, options, figures, and the
Markdown section of bench/RESULTS.md (also printed on stdout)."""

from __future__ import annotations

import collections
import importlib.metadata
import math
import os
import platform
import statistics
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bench.load import LoadResult
from bench.reporting import cpu_model, verdict
from bench.upstream import EMBEDDING_DIMENSIONS, STREAM_CHUNKS

SECTION_TITLE = "## Data plane overhead (bench/proxy_bench.py)"

DIRECT = "direct"
BARE = "bare"
HYDITE = "hydite"
HYDITE_2DP = "hydite-2dp"
LITELLM = "litellm"
TARGET_ORDER = (DIRECT, BARE, HYDITE, HYDITE_2DP, LITELLM)

TARGET_CAPACITY_RATIO = 0.9
TARGET_ADDED_P50_MS = 0.35
TARGET_ADDED_P99_MS = 0.9
TARGET_LEAK_GROWTH = 0.05
TARGET_LEAK_GROWTH_BYTES = 10_000_000
TARGET_ANTHROPIC_STREAM_RATIO = 1.3
ANTHROPIC_SCENARIO = "anthropic50 c=16"
NATIVE_STREAM_SCENARIO = "stream50 c=16"


@dataclass(frozen=True)
class Scenario:
    """One load shape: kind is chat (non-stream), stream, anthropic-stream (the same stream from an
    Anthropic upstream, translated) or embeddings."""

    name: str
    kind: str
    concurrency: int

    @property
    def streams(self) -> bool:
        """Whether the answer is an SSE stream."""
        return self.kind in ("stream", "anthropic-stream")

    @property
    def judged(self) -> bool:
        """Whether Hydite's capacity ratio here is held to the 0.9x target."""
        return (self.kind == "chat" and self.concurrency >= 16) or (
            self.kind == "stream" and self.concurrency == 16
        )


@dataclass(frozen=True)
class Options:
    """Mode, durations, repeats and what is measured."""

    mode: str
    duration: float
    warmup: float
    repeats: int
    scenarios: tuple[Scenario, ...]
    use_wrk: bool
    latency_ms: float
    stream_interval_ms: float
    suite_streams: int
    suite_duration: float
    suite_warmup: float
    suite_repeats: int
    profile_seconds: int
    leak_total: int
    leak_warmup: int
    leak_every: int
    litellm: bool


@dataclass
class Figures:
    """Every run by (scenario, target), the stream suite, memory, the leak check and the profile."""

    runs: dict[tuple[str, str], list[LoadResult]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    suite: dict[str, list[LoadResult]] = field(default_factory=lambda: collections.defaultdict(list))
    rss: dict[str, tuple[int, int]] = field(default_factory=dict)
    leak: list[tuple[int, int]] = field(default_factory=list)
    pinned: bool = False
    wrk: str = ""
    litellm: str = ""
    profile: list[str] = field(default_factory=list)
    profile_scenario: str = ""
    usage: tuple[int, int, float] | None = None
    """Requests the data planes served, spend_logs rows written for them, seconds ingest took."""


def median_of(runs: Sequence[LoadResult], attribute: str) -> float:
    """Median of one attribute (or property) over the repeats."""
    return statistics.median(float(getattr(run, attribute)) for run in runs)


def ms(seconds: float) -> str:
    """Seconds as milliseconds, two decimals; a dash when unknown."""
    return "–" if math.isnan(seconds) else f"{seconds * 1e3:.2f}"


def mb(size: float) -> str:
    """Bytes as MB (10^6)."""
    return f"{size / 1e6:.0f}"


def table(header: Sequence[str], align: str, rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table; align has one letter per column, l or r."""
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# ---------------------------------------------------------------- tables


def errors_of(runs: Sequence[LoadResult]) -> str:
    """Failed requests over the repeats, and accept-queue overflows (marked †) when there were any."""
    errors = sum(run.errors for run in runs)
    overflows = sum(run.listen_overflows for run in runs)
    return f"{errors} ({overflows} †)" if overflows else str(errors)


def result_rows(figures: Figures, options: Options) -> list[list[str]]:
    """Per scenario and target: medians of RPS, CPU/request, TTFB and latency; errors; RSS."""
    rows: list[list[str]] = []
    for scenario in options.scenarios:
        for target in TARGET_ORDER:
            runs = figures.runs.get((scenario.name, target))
            if not runs:
                continue
            rss = figures.rss.get(target)
            rows.append(
                [
                    scenario.name,
                    target,
                    f"{median_of(runs, 'rps'):.0f}",
                    "–" if target == DIRECT else f"{median_of(runs, 'cpu_us_per_request'):.0f}",
                    f"{ms(median_of(runs, 'ttfb_p50'))} / {ms(median_of(runs, 'ttfb_p99'))}"
                    if scenario.streams
                    else "–",
                    " / ".join(ms(median_of(runs, name)) for name in ("p50", "p90", "p99", "max")),
                    errors_of(runs),
                    "–" if rss is None else mb(rss[0]),
                ]
            )
    return rows


def ratio_rows(figures: Figures, options: Options) -> tuple[list[list[str]], list[str]]:
    """(rows, misses): RPS and CPU/request against the bare proxy, capacity verdicts for Hydite."""
    rows: list[list[str]] = []
    misses: list[str] = []
    for scenario in options.scenarios:
        bare = figures.runs.get((scenario.name, BARE))
        if not bare:
            continue
        bare_rps = median_of(bare, "rps")
        bare_cpu = median_of(bare, "cpu_us_per_request")
        for target in (HYDITE, HYDITE_2DP, LITELLM):
            runs = figures.runs.get((scenario.name, target))
            if not runs:
                continue
            cpu = median_of(runs, "cpu_us_per_request")
            capacity = bare_cpu / cpu
            judged = target == HYDITE and scenario.judged
            rows.append(
                [
                    scenario.name,
                    target,
                    f"{median_of(runs, 'rps') / bare_rps:.2f}×",
                    f"{cpu:.0f} ({bare_cpu:.0f}), {cpu - bare_cpu:+.0f}",
                    f"{capacity:.2f}×",
                    f"≥ {TARGET_CAPACITY_RATIO}×" if judged else "",
                    verdict(capacity >= TARGET_CAPACITY_RATIO) if judged else "",
                ]
            )
            if judged and capacity < TARGET_CAPACITY_RATIO:
                allowed = bare_cpu / TARGET_CAPACITY_RATIO
                misses.append(
                    f"{scenario.name}: capacity {capacity:.2f}× misses {TARGET_CAPACITY_RATIO}× by "
                    f"{TARGET_CAPACITY_RATIO - capacity:.2f}×: Hydite spends {cpu:.0f} µs CPU/request, "
                    f"{TARGET_CAPACITY_RATIO}× allows {allowed:.0f} µs (bare {bare_cpu:.0f} µs ÷ "
                    f"{TARGET_CAPACITY_RATIO}), {cpu - allowed:.0f} µs/request too many."
                )
    return rows, misses


def translation_lines(figures: Figures) -> list[str]:
    """Hydite's CPU per request for a stream translated from Anthropic's events, against the same
    stream from an OpenAI upstream in the same run."""
    translated = figures.runs.get((ANTHROPIC_SCENARIO, HYDITE))
    native = figures.runs.get((NATIVE_STREAM_SCENARIO, HYDITE))
    if not translated or not native:
        return []
    cpu = median_of(translated, "cpu_us_per_request")
    native_cpu = median_of(native, "cpu_us_per_request")
    ratio = cpu / native_cpu
    return [
        "",
        "### Anthropic stream translation",
        "",
        *textwrap.wrap(
            f"The {STREAM_CHUNKS}-chunk stream at c=16 from an Anthropic upstream, translated to OpenAI "
            f"chunks: Hydite {cpu:.0f} µs CPU/request against {native_cpu:.0f} µs for the same stream "
            f"from an OpenAI upstream, {ratio:.2f}× (target ≤ {TARGET_ANTHROPIC_STREAM_RATIO}×): "
            f"{verdict(ratio <= TARGET_ANTHROPIC_STREAM_RATIO)}.",
            100,
        ),
    ]


def latency_rows(figures: Figures, options: Options) -> tuple[list[list[str]], list[str]]:
    """(rows, misses): latency added at concurrency 1 over calling the upstream directly."""
    c1 = next((s for s in options.scenarios if s.kind == "chat" and s.concurrency == 1), None)
    direct = figures.runs.get((c1.name, DIRECT)) if c1 else None
    if c1 is None or not direct:
        return [], []
    direct_p50, direct_p99 = median_of(direct, "p50"), median_of(direct, "p99")
    rows = [[DIRECT, ms(direct_p50), ms(direct_p99), "", "", "", ""]]
    misses: list[str] = []
    for target in (BARE, HYDITE, LITELLM):
        runs = figures.runs.get((c1.name, target))
        if not runs:
            continue
        added_p50 = (median_of(runs, "p50") - direct_p50) * 1e3
        added_p99 = (median_of(runs, "p99") - direct_p99) * 1e3
        judged = target == HYDITE
        ok = added_p50 <= TARGET_ADDED_P50_MS and added_p99 <= TARGET_ADDED_P99_MS
        rows.append(
            [
                target,
                ms(median_of(runs, "p50")),
                ms(median_of(runs, "p99")),
                f"{added_p50:.3f}",
                f"{added_p99:.3f}",
                f"≤ {TARGET_ADDED_P50_MS} / ≤ {TARGET_ADDED_P99_MS}" if judged else "",
                verdict(ok) if judged else "",
            ]
        )
        if judged:
            for label, added, limit in (
                ("p50", added_p50, TARGET_ADDED_P50_MS),
                ("p99", added_p99, TARGET_ADDED_P99_MS),
            ):
                if added > limit:
                    misses.append(
                        f"{c1.name}: Hydite adds {added:.3f} ms at {label}, "
                        f"{added - limit:.3f} ms over the {limit} ms target."
                    )
    return rows, misses


def suite_rows(figures: Figures) -> list[list[str]]:
    """The stream suite: TTFB and inter-chunk gap, and what each proxy adds over direct."""
    direct = figures.suite.get(DIRECT)
    rows: list[list[str]] = []
    for target in (DIRECT, BARE, HYDITE):
        runs = figures.suite.get(target)
        if not runs:
            continue
        values = {name: median_of(runs, name) for name in ("ttfb_p50", "ttfb_p99", "gap_p50", "gap_p99")}
        if direct and target != DIRECT:
            added = {name: f"{(v - median_of(direct, name)) * 1e3:+.2f}" for name, v in values.items()}
        else:
            added = dict.fromkeys(values, "–")
        rows.append(
            [
                target,
                f"{median_of(runs, 'requests'):.0f}",
                f"{median_of(runs, 'rps'):.0f}",
                f"{ms(values['ttfb_p50'])} / {ms(values['ttfb_p99'])}",
                f"{added['ttfb_p50']} / {added['ttfb_p99']}",
                f"{ms(values['gap_p50'])} / {ms(values['gap_p99'])}",
                f"{added['gap_p50']} / {added['gap_p99']}",
                "–" if target == DIRECT else f"{median_of(runs, 'cpu_us_per_request'):.0f}",
                errors_of(runs),
            ]
        )
    return rows


def leak_lines(figures: Figures, options: Options) -> list[str]:
    """The leak check: RSS samples and growth from the first to the last, with its verdict."""
    if not figures.leak:
        return []
    first, last = figures.leak[0][1], figures.leak[-1][1]
    growth = last - first
    ok = growth <= TARGET_LEAK_GROWTH_BYTES or growth <= TARGET_LEAK_GROWTH * first
    lines = [
        "",
        f"### Memory under {options.leak_total:,} requests (leak check)",
        "",
        f"Hydite (1 data plane) under chat c=64 until {options.leak_total:,} requests were served; VmRSS of",
        f"the data plane after a {options.leak_warmup:,}-request warm-up and then every "
        f"~{options.leak_every:,} requests.",
        "",
    ]
    lines += table(
        ("Requests served", "VmRSS MB"),
        "rr",
        [[f"{served:,}", f"{rss / 1e6:.1f}"] for served, rss in figures.leak],
    )
    lines += [
        "",
        f"Growth from the first to the last sample: {growth / 1e6:+.1f} MB ({100 * growth / first:+.1f}%);"
        f" target ≤ {100 * TARGET_LEAK_GROWTH:.0f}% or ≤ {TARGET_LEAK_GROWTH_BYTES / 1e6:.0f} MB:"
        f" **{verdict(ok)}**",
    ]
    if not ok:
        limit = max(TARGET_LEAK_GROWTH_BYTES, TARGET_LEAK_GROWTH * first)
        lines.append(f"The data plane grew {(growth - limit) / 1e6:.1f} MB more than the target allows.")
    return lines


def usage_lines(figures: Figures) -> list[str]:
    """Whether every request served during the benchmark became a spend_logs row."""
    if figures.usage is None:
        return []
    served, rows, seconds = figures.usage
    text = (
        f"Every request the two data planes served in this run (their `hydite_requests_total`, readiness "
        f"checks and warm-ups included) was published to JetStream while they were loaded; spend-ingest, "
        f"started only after the timed runs, then wrote {rows:,} spend_logs rows for {served:,} requests in "
        f"{seconds:.0f} s: **{verdict(rows == served)}** (zero usage lost)."
    )
    return ["", "### Usage accounted", "", *textwrap.wrap(text, 100)]


# ---------------------------------------------------------------- the section


def environment(figures: Figures, options: Options) -> list[tuple[str, str]]:
    """Date, machine, pinning, versions and load generators of this run."""
    cpu = cpu_model()
    packages = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("aiohttp", "uvloop", "orjson", "nats-py", "grpcio")
    )
    pinning = (
        "SUT (bare proxy, data planes, LiteLLM) on CPU 0; load generator, upstream, control plane and "
        "spend-ingest on CPU 1 (taskset / sched_setaffinity), except at concurrency 1, where the load "
        "generator shares CPU 0 with the SUT (they never run at once)"
        if figures.pinned
        else "not pinned (fewer than 2 CPUs usable)"
    )
    generator = "closed-loop aiohttp generator (every scenario)"
    if figures.wrk:
        generator = (
            f"{figures.wrk}, `-t1`, for non-stream scenarios; closed-loop aiohttp generator for streams"
        )
    rows = [
        ("Date (UTC)", datetime.now(UTC).strftime("%Y-%m-%d %H:%M")),
        ("Machine", f"{platform.machine()}, {cpu}, {os.cpu_count()} CPUs"),
        ("Pinning", pinning),
        ("Python", platform.python_version()),
        ("Packages", packages),
        ("Load generator", generator),
        (
            "Fake upstream",
            f"{options.latency_ms:g} ms added latency; stream suite paced at "
            f"{options.stream_interval_ms:g} ms between chunks",
        ),
        ("Mode", f"{options.mode}: {options.repeats} interleaved repeat(s), medians shown"),
    ]
    if figures.litellm:
        rows.append(("LiteLLM peer", figures.litellm))
    return rows


def markdown_section(figures: Figures, options: Options) -> str:
    """This benchmark's section of RESULTS.md."""
    intro = (
        "Real processes on 127.0.0.1 (`make bench`): a fake OpenAI upstream (aiohttp + uvloop, fixed small "
        f"answers: a chat completion with usage; {STREAM_CHUNKS} SSE chunks + usage chunk; an embedding list "
        f"of {EMBEDDING_DIMENSIONS} floats), a bare aiohttp + uvloop passthrough proxy with one "
        "ClientSession (the ceiling for a Python data plane), and Hydite started by "
        "`hydite_common.devstack.Stack`: "
        "control plane, real NATS and Postgres, and the data plane with every feature on "
        "(auth of a key with rpm/tpm limits evaluated on every request but never tripping, model "
        "allowlist, routing, metrics counted, usage events batched to JetStream; tracing is off as no "
        "request is sampled). Spend-ingest consumes the usage after the timed runs (see Usage accounted): "
        "on this 2-core machine its Postgres writes would otherwise run on the data plane's core. "
        "`hydite-2dp` is two data-plane processes of the same stack on two "
        "ports, both on CPU 0, load split evenly (informational). `direct` is the load generator calling "
        f"the upstream. Each run: {options.warmup:g} s warm-up, {options.duration:g} s timed; targets "
        f"interleaved in an order that alternates each repeat, {options.repeats} repeat(s), medians shown. "
        "CPU/request = utime+stime of the system under test (/proc/<pid>/stat, summed over its processes) "
        "over the timed window ÷ completed requests; capacity ratio = bare CPU/request ÷ target "
        "CPU/request, the per-core reading of the 0.9× target (measured RPS is bounded by the load core, "
        "which also runs the upstream)."
    )
    lines = [SECTION_TITLE, "", *textwrap.wrap(intro, 100), ""]
    lines += [f"- {name}: {value}" for name, value in environment(figures, options)]
    lines += [""]
    lines += table(
        (
            "Scenario",
            "Target",
            "RPS",
            "CPU µs/req",
            "TTFB p50 / p99 ms",
            "Latency p50 / p90 / p99 / max ms",
            "Errors",
            "SUT RSS MB",
        ),
        "llrrrrrr",
        result_rows(figures, options),
    )
    if any(run.listen_overflows for runs in figures.runs.values() for run in runs):
        lines += [
            "",
            *textwrap.wrap(
                "† Connections the kernel dropped at a full accept queue while the load generator opened "
                "its connections (TcpExt ListenOverflows in /proc/net/netstat, counted over the run, "
                "warm-up included): aiohttp listens with a backlog of 128, and each drop delays a "
                "connection's first request by about 1 s (SYN-ACK retransmit), which shows at p99/max.",
                100,
            ),
        ]
    ratios, capacity_misses = ratio_rows(figures, options)
    lines += ["", "### Against the bare proxy", ""]
    lines += table(
        (
            "Scenario",
            "Target",
            "RPS ÷ bare",
            "CPU µs/req (bare), added",
            "Capacity (bare CPU/req ÷ CPU/req)",
            "Target",
            "Result",
        ),
        "llrrrll",
        ratios,
    )
    lines += [
        "",
        "Judged: Hydite's capacity for non-stream chat at c ≥ 16 and streams at c = 16. `hydite-2dp` and",
        "`litellm` rows are informational.",
    ]
    lines += translation_lines(figures)
    latency, latency_misses = latency_rows(figures, options)
    if latency:
        lines += ["", "### Added latency at concurrency 1 (chat, over calling the upstream directly)", ""]
        lines += table(
            ("Target", "p50 ms", "p99 ms", "Added p50 ms", "Added p99 ms", "Target", "Result"),
            "lrrrrll",
            latency,
        )
        lines += [
            "",
            *textwrap.wrap(
                "At concurrency 1 the load generator runs on CPU 0 beside the system under test (they "
                "take turns, never running at once), so direct and proxied calls alike cross to the "
                "upstream's core once each way and the added latency is the proxy's own work.",
                100,
            ),
        ]
    misses = capacity_misses + latency_misses
    if misses:
        lines += ["", "Missed targets:", ""]
        lines += [f"- {miss}" for miss in misses]
        if figures.profile:
            lines += ["", "Where the extra CPU goes is in the profile below."]
    suite = suite_rows(figures)
    if suite:
        lines += [
            "",
            f"### Stream suite ({options.suite_streams} concurrent streams)",
            "",
            *textwrap.wrap(
                f"{options.suite_streams} closed-loop workers, each streaming {STREAM_CHUNKS} chunks + usage"
                f" paced {options.stream_interval_ms:g} ms apart by the upstream; {options.suite_warmup:g} s"
                f" warm-up, {options.suite_duration:g} s timed, median of {options.suite_repeats}. Gap = time"
                " between consecutive SSE events arriving at the client (events that arrive in one read"
                " count as 0 apart). Added = target − direct.",
                100,
            ),
            "",
        ]
        lines += table(
            (
                "Target",
                "Streams",
                "Streams/s",
                "TTFB p50 / p99 ms",
                "Added TTFB p50 / p99",
                "Gap p50 / p99 ms",
                "Added gap p50 / p99",
                "CPU µs/stream",
                "Errors",
            ),
            "lrrrrrrrr",
            suite,
        )
    lines += leak_lines(figures, options)
    lines += usage_lines(figures)
    if figures.profile:
        lines += ["", f"### Where the time goes (py-spy, data plane under {figures.profile_scenario})", ""]
        lines += figures.profile
    return "\n".join(lines) + "\n"
