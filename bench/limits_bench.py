"""Cluster-wide limits benchmark: how exactly 1, 3 and 5 data planes together hold a key's limits
under bursts, and what the limit checks cost the data plane in CPU per request.

`python -m bench.limits_bench` runs the full benchmark and rewrites its section of bench/RESULTS.md;
`--smoke` runs a tiny version (1 and 3 data planes, one burst each, small CPU runs) and writes
nothing. Every process runs on 127.0.0.1 (the stacks of tests/cluster_limits_helper.py: a NATS
server of their own, the control plane, spend-ingest, N data planes, a fake OpenAI upstream) and all
are stopped and their database and streams dropped afterwards, even on failure. Targets are printed
as PASS/MISS, never asserted: benchmarks are not tests.

(a) Exactness: for each cluster size, bursts of 5x a key's limit from 32 concurrent clients spread
round-robin over the data planes, each burst with a fresh key: rpm_limit (admitted requests ÷
limit) and tpm_limit (tokens of the admitted requests ÷ limit).
(b) CPU: on one data plane, pairs of runs of the same requests with a key carrying five limits
(rpm, tpm, max_parallel, max_budget, model_rpm; none ever trips) and a key with none, the order
alternating; the data plane's utime + stime from /proc/<pid>/stat over each run ÷ requests, and
the median over the pairs of the difference within each pair: the whole request's cost, noisy on a
shared machine (a clock tick of /proc is 10 ms).
(c) The limit checks alone, judged against the target: in this process, the data plane's budget
and rate-limit hooks admitting and settling the same requests for a key of five limits and a key of
none, pairs of runs of CPU time ÷ requests.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from bench.processes import LOAD_CPUS, SUT_CPUS, can_pin, cpu_seconds, pin
from bench.reporting import (
    FigureRow,
    cpu_model,
    exit_on_sigterm,
    figures_markdown,
    percentile,
    print_figures,
    verdict,
    write_section,
)
from hydite.config.v1 import config_pb2 as pb
from hydite_common.events import UsageEvent, UsagePayload
from hydite_dataplane.config.decode import empty_snapshot
from hydite_dataplane.config.snapshot import Snapshot
from hydite_dataplane.hooks import Hooks
from hydite_dataplane.limits.budgets import BudgetLedger
from hydite_dataplane.limits.limiter import RateLimiter
from hydite_dataplane.limits.shares import ClusterShares
from hydite_dataplane.limits.spend_view import SpendView
from hydite_dataplane.request import Caller, InferenceRequest, TokenUsage, outcome_of
from tests.cluster_limits_helper import CALL_TOKENS, ClusterStack, burst

SECTION_TITLE = "## Cluster-wide limits (`bench/limits_bench.py`)"
RPM_LIMIT = 100
TPM_LIMIT = 100 * CALL_TOKENS
BURST_FACTOR = 5
BURST_CLIENTS = 32
CPU_CLIENTS = 8
TARGET_RATIO = 1.05
TARGET_ADDED_CPU_US = 5.0


@dataclass(frozen=True)
class Options:
    """What to run: cluster sizes, bursts per limit and size, and the CPU runs."""

    sizes: tuple[int, ...]
    bursts: int
    cpu_requests: int
    cpu_repeats: int
    smoke: bool
    write_results: bool


@dataclass
class Figures:
    """Everything measured, filled in as the phases complete."""

    rpm_ratios: dict[int, list[float]] = field(default_factory=dict)
    tpm_ratios: dict[int, list[float]] = field(default_factory=dict)
    cpu_us_limited: list[float] = field(default_factory=list)
    cpu_us_unlimited: list[float] = field(default_factory=list)
    cpu_requests: int = 0
    pinned: bool = False
    wall_seconds: float = 0.0
    hooks_us_added: list[float] = field(default_factory=list)
    """(c) Per pair of in-process runs: the pre-call hooks' µs per request, five limits minus none."""
    hooks_us_none: list[float] = field(default_factory=list)

    @property
    def added_cpu_us(self) -> list[float]:
        """Per pair of neighbouring runs, CPU per request with five limits minus without: pairs
        cancel most of what other work on the machine adds to both, which medians of each do not."""
        return [a - b for a, b in zip(self.cpu_us_limited, self.cpu_us_unlimited, strict=True)]


def measure_exactness(cluster: ClusterStack, size: int, options: Options, figures: Figures) -> None:
    """(a) Bursts of BURST_FACTOR times the limit, round-robin, each burst on a fresh key."""
    model = cluster.deploy()
    rpm, tpm = figures.rpm_ratios.setdefault(size, []), figures.tpm_ratios.setdefault(size, [])
    for _ in range(options.bursts):
        key = cluster.new_key(rpm_limit=RPM_LIMIT)
        answers = burst(cluster.targets, key, model, RPM_LIMIT * BURST_FACTOR, concurrency=BURST_CLIENTS)
        rpm.append(sum(answer.admitted for answer in answers) / RPM_LIMIT)
        key = cluster.new_key(tpm_limit=TPM_LIMIT)
        calls = TPM_LIMIT // CALL_TOKENS * BURST_FACTOR
        answers = burst(cluster.targets, key, model, calls, concurrency=BURST_CLIENTS)
        tpm.append(sum(answer.admitted for answer in answers) * CALL_TOKENS / TPM_LIMIT)
    print(f"  {size} data plane(s): rpm {rpm}, tpm {tpm}")


def measure_cpu(cluster: ClusterStack, options: Options, figures: Figures) -> None:
    """(b) The data plane's CPU per request with five limits and with none, interleaved runs."""
    model = cluster.deploy()
    never = options.cpu_requests * 1_000
    limited = cluster.new_key(
        rpm_limit=never,
        tpm_limit=never * CALL_TOKENS,
        max_parallel_requests=CPU_CLIENTS * 4,
        max_budget=1_000_000.0,
        model_rpm_limit={model: never},
    )
    unlimited = cluster.new_key()
    service = cluster.dataplanes[0].service
    assert service is not None
    pid = service.process.pid
    figures.pinned = can_pin()
    own_cpus = os.sched_getaffinity(0)
    if figures.pinned:
        # As proxy_bench does: the data plane on its core, the load generator (this process) on
        # the other, so neither run of a pair gets the other's scheduling.
        pin(pid, SUT_CPUS)
        os.sched_setaffinity(0, LOAD_CPUS)
    try:
        _cpu_runs(cluster, options, figures, pid, model, (limited, unlimited))
    finally:
        # The processes of the next clusters, started from here, must not inherit the pin.
        os.sched_setaffinity(0, own_cpus)
    print(f"  CPU µs/request: five limits {figures.cpu_us_limited}, none {figures.cpu_us_unlimited}")


def _cpu_runs(
    cluster: ClusterStack, options: Options, figures: Figures, pid: int, model: str, keys: tuple[str, str]
) -> None:
    """The timed pairs of runs (after a warm-up of each key)."""
    limited, unlimited = keys
    # A warm-up of each key: the first requests of a key pay for caches the timed ones find filled.
    for key in (limited, unlimited):
        burst(cluster.targets, key, model, 200, concurrency=CPU_CLIENTS)
    figures.cpu_requests = options.cpu_requests
    for repeat in range(options.cpu_repeats):
        runs = ((limited, figures.cpu_us_limited), (unlimited, figures.cpu_us_unlimited))
        for key, results in runs if repeat % 2 == 0 else runs[::-1]:
            before = cpu_seconds([pid])
            answers = burst(cluster.targets, key, model, options.cpu_requests, concurrency=CPU_CLIENTS)
            spent = cpu_seconds([pid]) - before
            refused = sum(not answer.admitted for answer in answers)
            if refused:
                raise RuntimeError(f"{refused} requests of a CPU run were refused; the limits must not trip")
            results.append(spent / options.cpu_requests * 1e6)


HOOK_REQUESTS = 20_000
HOOK_PAIRS = 10


def measure_hooks(options: Options, figures: Figures) -> None:
    """(c) The limit checks alone, in this process: the data plane's budget and rate-limit hooks,
    admitting and settling the same requests for a key of five limits and for a key of none."""
    ledger, limiter, snapshot = _hook_setup()
    five = pb.VirtualKey(
        limits=pb.Limits(
            rpm_limit=10**9, tpm_limit=10**12, max_parallel_requests=10**6, max_budget=1e12,
            model_rpm_limit={"m": 10**9},
        )
    )  # fmt: skip
    requests = HOOK_REQUESTS // 10 if options.smoke else HOOK_REQUESTS
    for pair in range(1 if options.smoke else HOOK_PAIRS):
        runs = {}
        for name, key in (("five", five), ("none", pb.VirtualKey())):
            runs[name] = asyncio.run(_hook_run(ledger, limiter, snapshot, key, f"{name}-{pair}", requests))
        figures.hooks_us_added.append(runs["five"] - runs["none"])
        figures.hooks_us_none.append(runs["none"])
    print(f"  hooks, µs/request added by five limits: {[round(x, 2) for x in figures.hooks_us_added]}")


def _hook_setup() -> tuple[BudgetLedger, RateLimiter, Snapshot]:
    shares = ClusterShares("bench-node")
    shares.set_connected(True)
    ledger = BudgetLedger(shares, SpendView("bench-publisher"), _NoSink(), default_reservation=0.05)
    return ledger, RateLimiter(shares), empty_snapshot()


class _NoSink:
    def record(self, event: UsageEvent) -> None:
        """Dropped: only the hooks are measured."""

    def record_payload(self, payload: UsagePayload) -> None:
        """Dropped."""


async def _hook_run(
    ledger: BudgetLedger, limiter: RateLimiter, snapshot: Snapshot, key: pb.VirtualKey, name: str, count: int
) -> float:
    """µs of CPU per request through the pre-call hooks and their settling."""
    hooks = Hooks(pre_call=[ledger, limiter])
    outcome = outcome_of(None, usage=TokenUsage(prompt_tokens=10, completion_tokens=10))
    requests = [
        InferenceRequest(
            request_id=f"{name}-{index}", operation="chat", wire_format="openai", model="m",
            body={"max_tokens": 10}, stream=False, caller=Caller.of(snapshot, name, key), start_time=0.0,
            start_perf=0.0, requested_model="m", body_bytes=300,
        )
        for index in range(count)
    ]  # fmt: skip
    started = time.process_time()
    for request in requests:
        call = hooks.start(request)
        await call.before_call()
        call.after_call(outcome)
        ledger.record(cast(UsageEvent, {"request_id": request.request_id, "cost": 0.0}))
    return (time.process_time() - started) / count * 1e6


def run_cluster(size: int, options: Options, figures: Figures, data_dir: Path) -> None:
    """Start a cluster of `size` data planes, measure on it, and remove it."""
    cluster = ClusterStack(data_dir / f"cluster-{size}", dataplanes=size)
    try:
        cluster.start()
        measure_exactness(cluster, size, options, figures)
        if size == 1:
            measure_cpu(cluster, options, figures)
    except Exception:
        for service in cluster.stack.services:
            print(f"--- {service.name}\n{service.log_tail()[-3000:]}", file=sys.stderr)
        raise
    finally:
        cluster.remove()


def figure_rows(figures: Figures) -> list[FigureRow]:
    """The report's rows: per cluster size the worst and median ratio, then the CPU cost."""
    rows: list[FigureRow] = []
    for name, ratios in (("rpm_limit", figures.rpm_ratios), ("tpm_limit", figures.tpm_ratios)):
        for size, values in sorted(ratios.items()):
            worst = max(values)
            rows.append(
                (
                    f"{name}, {size} data plane(s): admitted ÷ limit, max / median / min of {len(values)}",
                    f"{worst:.3f} / {statistics.median(values):.3f} / {min(values):.3f}",
                    f"≤ {TARGET_RATIO:.2f}",
                    verdict(worst <= TARGET_RATIO),
                )
            )
    if figures.hooks_us_added:
        hooks_added = statistics.median(figures.hooks_us_added)
        rows.append(
            (
                "Pre-call hooks in process, no limits (median)",
                f"{statistics.median(figures.hooks_us_none):.2f} µs",
                "",
                "",
            )
        )
        rows.append(
            (
                f"Added by the five limit checks in process, median of {len(figures.hooks_us_added)} pairs",
                f"{hooks_added:.2f} µs",
                f"≤ {TARGET_ADDED_CPU_US:.0f} µs",
                verdict(hooks_added <= TARGET_ADDED_CPU_US),
            )
        )
        rows.append(("This machine's Python: sum(range(1000))", f"{_python_speed_us():.1f} µs", "", ""))
    if figures.cpu_us_limited and figures.cpu_us_unlimited:
        limited = statistics.median(figures.cpu_us_limited)
        unlimited = statistics.median(figures.cpu_us_unlimited)
        rows.append(("Data-plane CPU per request, no limits (median)", f"{unlimited:.1f} µs", "", ""))
        rows.append(("Data-plane CPU per request, five limits (median)", f"{limited:.1f} µs", "", ""))
        runs = [*figures.cpu_us_limited, *figures.cpu_us_unlimited]
        rows.append(
            ("CPU per request of single runs, min … max", f"{min(runs):.0f} … {max(runs):.0f} µs", "", "")
        )
        added = figures.added_cpu_us
        median_added = statistics.median(added)
        low, high = percentile(added, 0.25), percentile(added, 0.75)
        rows.append(
            (
                f"CPU added by the five limit checks, median (interquartile range) of {len(added)} pairs",
                f"{median_added:.1f} µs ({low:.1f} … {high:.1f})",
                f"≤ {TARGET_ADDED_CPU_US:.0f} µs",
                "",
            )
        )
    return rows


def _python_speed_us() -> float:
    """A yardstick for the µs figures: a fast desktop CPU does it in about 7 µs."""
    return min(timeit.repeat("sum(range(1000))", number=2_000, repeat=5)) / 2_000 * 1e6


def environment() -> list[tuple[str, str]]:
    """Date, machine, Python and the packages that shape the figures."""
    packages = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in ("aiohttp", "nats-py"))
    return [
        ("Date (UTC)", datetime.now(UTC).strftime("%Y-%m-%d %H:%M")),
        ("Machine", f"{platform.machine()}, {cpu_model()}"),
        ("Python", platform.python_version()),
        ("Packages", packages),
    ]


def cpu_environment(figures: Figures) -> list[tuple[str, str]]:
    """Whether the CPU runs were pinned."""
    return [("CPU runs pinned (data plane CPU 0, load CPU 1)", "yes" if figures.pinned else "no")]


def markdown_section(figures: Figures, options: Options) -> str:
    """The RESULTS.md section."""
    intro = [
        SECTION_TITLE,
        "",
        "Real processes on 127.0.0.1 (`make bench`): a NATS server of the benchmark's own, the",
        "control plane, spend-ingest and N data planes gossiping their counts every 100 ms, with a",
        "fake OpenAI upstream whose every answer reports the same usage, all on the same 2 cores.",
        f"(a) For each cluster size, {options.bursts} bursts per limit of {BURST_FACTOR}× the limit",
        f"from {BURST_CLIENTS} concurrent clients, round-robin over the data planes, a fresh key each:",
        f"rpm_limit {RPM_LIMIT} (admitted ÷ limit) and tpm_limit {TPM_LIMIT} (tokens admitted ÷ limit).",
        f"(b) On one data plane, {options.cpu_repeats} pairs of runs of {options.cpu_requests:,} requests",
        f"from {CPU_CLIENTS} clients, with a key of five limits (rpm, tpm, max_parallel, max_budget,",
        "model_rpm; none trips) and with a key of none, the order alternating; the data plane's",
        "utime + stime from /proc over each run ÷ requests; the added cost is the median over the",
        "pairs of the difference within a pair (other work on the shared machine moves both runs of",
        "a pair alike, and the runs of a pair are seconds apart). The data plane is pinned to CPU 0",
        "and the load generator to CPU 1 when both are available.",
        "(c) Judged against the target: the limit checks alone, in process — the data plane's budget",
        f"and rate-limit hooks admitting and settling {HOOK_REQUESTS:,} requests for the key of five",
        f"limits and for a key of none, {HOOK_PAIRS} pairs; this machine's Python speed is a yardstick.",
        "",
    ]
    lines = figures_markdown([*environment(), *cpu_environment(figures)], figure_rows(figures))
    return "\n".join([*intro, *lines, "", f"Whole run: {figures.wall_seconds:.0f} s.", ""])


def parse_options(argv: Sequence[str] | None) -> Options:
    """Command-line options; --smoke is the small, fast mode."""
    parser = argparse.ArgumentParser(prog="python -m bench.limits_bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="1 and 3 data planes, tiny runs; no RESULTS.md")
    args = parser.parse_args(argv)
    smoke = bool(args.smoke)
    return Options(
        sizes=(1, 3) if smoke else (1, 3, 5),
        bursts=1 if smoke else 3,
        cpu_requests=300 if smoke else 2_000,
        cpu_repeats=1 if smoke else 20,
        smoke=smoke,
        write_results=not smoke,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when it completed (targets missed or not)."""
    options = parse_options(argv)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    figures = Figures()
    data_dir = Path(tempfile.mkdtemp(prefix="hydite-bench-limits-"))
    started = time.perf_counter()
    print(f"limits benchmark: {', '.join(map(str, options.sizes))} data planes")
    try:
        measure_hooks(options, figures)
        for size in options.sizes:
            run_cluster(size, options, figures, data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    figures.wall_seconds = time.perf_counter() - started
    print_figures([*environment(), *cpu_environment(figures)], figure_rows(figures), target_width=8)
    print(f"\n(finished in {figures.wall_seconds:.0f} s)")
    if options.write_results:
        write_section(SECTION_TITLE, markdown_section(figures, options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
