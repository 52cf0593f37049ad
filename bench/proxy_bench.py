"""Data plane overhead benchmark: Hydite's data plane against a bare aiohttp passthrough proxy.

`python -m bench.proxy_bench` starts a fake OpenAI upstream, a bare passthrough proxy (the ceiling
for a Python data plane) and a Hydite stack (control plane, spend-ingest, one data plane and a
second one for the informational 2-process rows) on 127.0.0.1. Load comes from another process:
wrk for non-stream scenarios when it is installed, else (and for streams) a closed-loop aiohttp
generator. The system under test is pinned to CPU 0, the load generator and the upstream to CPU 1.
The primary figure is CPU time per request of the system under test, from /proc/<pid>/stat, over
interleaved repeats. Then: a stream suite (512 paced streams: TTFB and inter-chunk gap), a py-spy
profile, a leak check (RSS over 1,000,000 requests), and with `LITELLM=1` LiteLLM's proxy as a peer.
The full run rewrites its section of bench/RESULTS.md; `--quick` (1 repeat, short runs, 100k-request
leak check) and `--smoke` (about a second per configuration, Python generator only) only print.
Every process is stopped and the stack's namespace dropped afterwards, even on failure or SIGTERM.
Targets are printed as PASS/MISS, never asserted: benchmarks are not tests.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from bench import litellm_peer
from bench.load import LoadResult, LoadSpec, run_load, run_load_role, wrk_path, wrk_version
from bench.processes import (
    LOAD_CPUS,
    SUT_CPUS,
    can_pin,
    descendants,
    free_port,
    pin,
    start_child,
    stop_child,
)
from bench.profile import profile_process
from bench.proxy_report import (
    ANTHROPIC_SCENARIO,
    BARE,
    DIRECT,
    HYDITE,
    HYDITE_2DP,
    LITELLM,
    SECTION_TITLE,
    Figures,
    Options,
    Scenario,
    markdown_section,
    median_of,
)
from bench.reporting import exit_on_sigterm, memory_of, write_section
from bench.upstream import CHAT_PATH, EMBEDDINGS_PATH, PACED_PREFIX, serve_bare_proxy, serve_upstream

if TYPE_CHECKING:
    from hydite_common.devstack import Stack

READY_TIMEOUT_SECONDS = 30.0
LEAK_CONCURRENCY = 64
USAGE_INGEST_TIMEOUT_SECONDS = 600.0
# 512 streams paced 2 ms apart would ask for 256,000 SSE events/s, past what the load core (client and
# upstream) can produce, and the suite would time the load generator instead of the proxy; at 50 ms
# (20 tokens/s per stream) the load core was measured at about half busy.
SUITE_INTERVAL_MS = 50.0
PROFILE_SCENARIO = Scenario("chat c=16", "chat", 16)
LITELLM_SCENARIOS = ("chat c=1", "chat c=16", "stream50 c=16")
LITELLM_WARMUP_SECONDS = 5.0

# Limits that the data plane evaluates on every request but that never trip during a benchmark.
KEY_LIMITS = {"rpm_limit": 1_000_000_000, "tpm_limit": 1_000_000_000_000, "max_budget": 1_000_000}

MESSAGES = [{"role": "user", "content": "Hello"}]
BODIES = {
    "chat": orjson.dumps({"model": "bench", "messages": MESSAGES}).decode(),
    "stream": orjson.dumps(
        {"model": "bench", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    ).decode(),
    "embeddings": orjson.dumps({"model": "bench-embed", "input": "Hello"}).decode(),
    # The same stream, from an Anthropic upstream: the cost of translating it to OpenAI chunks.
    "anthropic-stream": orjson.dumps(
        {
            "model": "bench-anthropic",
            "messages": MESSAGES,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ).decode(),
    "paced": orjson.dumps(
        {
            "model": "bench-paced",
            "messages": MESSAGES,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ).decode(),
    # The paced route answered without a stream: a quick readiness check of model bench-paced.
    "paced-chat": orjson.dumps({"model": "bench-paced", "messages": MESSAGES}).decode(),
}


@dataclass(frozen=True)
class Target:
    """A system that answers the benchmark's requests; pids are the processes whose CPU is counted."""

    name: str
    urls: tuple[str, ...]
    key: str
    pids: tuple[int, ...]
    # Direct and bare reach the paced stream by path; a gateway by the model that routes there.
    paced_prefix: str = ""

    def request(self, kind: str) -> tuple[tuple[str, ...], str]:
        """(URLs, body) of one request kind: chat, stream, embeddings, paced or paced-chat."""
        path = {
            "chat": CHAT_PATH,
            "stream": CHAT_PATH,
            "embeddings": EMBEDDINGS_PATH,
            "anthropic-stream": CHAT_PATH,
            "paced": self.paced_prefix + CHAT_PATH,
            "paced-chat": self.paced_prefix + CHAT_PATH,
        }[kind]
        return tuple(url + path for url in self.urls), BODIES[kind]


# ---------------------------------------------------------------- starting the systems


def post(url: str, body: str, token: str) -> tuple[int, bytes]:
    """POST a JSON body with a bearer token; (status, body)."""
    request = urllib.request.Request(
        url,
        method="POST",
        data=body.encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        return 0, str(exc).encode()


def admin(url: str, body: object, token: str) -> bytes:
    """An admin call that must answer 200."""
    status, payload = post(url, orjson.dumps(body).decode(), token)
    if status != 200:
        raise RuntimeError(f"{url} answered {status}: {payload[:500]!r}")
    return payload


def wait_answers(target: Target, kinds: Sequence[str], timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Until every URL of target answers 200 to every request kind (config reached the data plane)."""
    deadline = time.monotonic() + timeout
    for kind in kinds:
        urls, body = target.request(kind)
        for url in urls:
            while True:
                status, payload = post(url, body, target.key)
                if status == 200:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} ({kind}) never answered 200: {status} {payload[:300]!r}")
                time.sleep(0.1)


def start_hydite(stack: Stack, upstream: str, pinned: bool) -> tuple[Target, Target]:
    """Control plane and two data planes; the bench models; a key with limits; ready. Spend-ingest
    starts after the timed runs (verify_usage): its Postgres writes would otherwise land on the
    data plane's core of this 2-core machine, while in production ingest runs elsewhere."""
    stack.start_dependencies()
    controlplane = stack.start_controlplane()
    first = stack.start_dataplane()
    second_port = free_port()
    second = stack.start_dataplane(port=second_port, node_id="bench-dataplane-2")
    if pinned:
        for service in (first, second):
            pin(service.process.pid, SUT_CPUS)
        pin(controlplane.process.pid, LOAD_CPUS)
    master = stack.config.master_key
    for name, model, api_base, info in (
        ("bench", "openai/gpt-4o-mini", upstream + "/v1", {}),
        ("bench-embed", "openai/text-embedding-3-small", upstream + "/v1", {"mode": "embedding"}),
        ("bench-paced", "openai/gpt-4o-mini", upstream + PACED_PREFIX + "/v1", {}),
        ("bench-anthropic", "anthropic/claude-sonnet-4-5", upstream, {}),
    ):
        admin(
            stack.admin_url + "/model/new",
            {
                "model_name": name,
                "litellm_params": {"model": model, "api_base": api_base, "api_key": "sk-x"},
                "model_info": info,
            },
            master,
        )
    key = str(
        orjson.loads(
            admin(stack.admin_url + "/key/generate", {"key_alias": "proxy-bench", **KEY_LIMITS}, master)
        )["key"]
    )
    one = Target(HYDITE, (stack.base_url,), key, (first.process.pid,))
    two = Target(
        HYDITE_2DP,
        (stack.base_url, f"http://127.0.0.1:{second_port}"),
        key,
        (first.process.pid, second.process.pid),
    )
    wait_answers(two, ("chat", "embeddings", "paced-chat", "anthropic-stream"))
    return one, two


# ---------------------------------------------------------------- measuring


def run(target: Target, scenario: Scenario, options: Options, pinned: bool, **overrides: float) -> LoadResult:
    """One timed run of scenario against target (duration/warmup overridable)."""
    urls, body = target.request(scenario.kind)
    spec = LoadSpec(
        urls=urls,
        key=target.key,
        body=body,
        concurrency=scenario.concurrency,
        duration=overrides.get("duration", options.duration),
        warmup=overrides.get("warmup", options.warmup),
        stream=scenario.streams,
    )
    use_wrk = options.use_wrk and not scenario.streams
    # At concurrency 1 the load generator and the system under test never run at once, so they
    # share CPU 0: every target then has the same one cross-core round trip (to the upstream), and
    # the added latency is the proxy's own work rather than a second core's wake-ups.
    cpus = SUT_CPUS if scenario.concurrency == 1 else LOAD_CPUS
    return run_load(spec, target.pids, use_wrk, cpus if pinned else None)


def progress(label: str, scenario: str, target: str, result: LoadResult) -> None:
    """One line per run."""
    cpu = "" if target == DIRECT else f"  {result.cpu_us_per_request:6.0f} µs CPU/req"
    overflows = f"  listen overflows {result.listen_overflows}" if result.listen_overflows else ""
    print(
        f"  [{label}] {scenario:<16} {target:<10} {result.rps:8.0f} RPS{cpu:<19}"
        f"  p50 {result.p50 * 1e3:.2f} ms  p99 {result.p99 * 1e3:.2f} ms  errors {result.errors}" + overflows,
        flush=True,
    )


def targets_of(scenario: Scenario) -> list[str]:
    """Which targets a scenario measures (direct only at c=1; two data planes need ≥ 2 connections)."""
    if scenario.kind == "chat" and scenario.concurrency == 1:
        return [DIRECT, BARE, HYDITE]
    if scenario.kind == "embeddings":
        return [BARE, HYDITE]
    if scenario.kind == "anthropic-stream":
        return [HYDITE]
    return [BARE, HYDITE, HYDITE_2DP]


def measure_repeats(targets: dict[str, Target], options: Options, figures: Figures) -> None:
    """Every scenario against its targets, interleaved, the order alternating each repeat."""
    for repeat in range(options.repeats):
        for scenario in options.scenarios:
            order = targets_of(scenario)
            for name in order if repeat % 2 == 0 else order[::-1]:
                result = run(targets[name], scenario, options, figures.pinned)
                figures.runs[(scenario.name, name)].append(result)
                progress(f"{repeat + 1}/{options.repeats}", scenario.name, name, result)


def measure_suite(targets: dict[str, Target], options: Options, figures: Figures) -> None:
    """suite_streams concurrent paced streams against direct, bare and Hydite: TTFB and gaps."""
    print(f"  stream suite: {options.suite_streams} concurrent paced streams", flush=True)
    order = [DIRECT, BARE, HYDITE]
    for repeat in range(options.suite_repeats):
        for name in order if repeat % 2 == 0 else order[::-1]:
            target = targets[name]
            urls, body = target.request("paced")
            spec = LoadSpec(
                urls=urls,
                key=target.key,
                body=body,
                concurrency=options.suite_streams,
                duration=options.suite_duration,
                warmup=options.suite_warmup,
                stream=True,
                gaps=True,
            )
            result = run_load(spec, target.pids, False, LOAD_CPUS if figures.pinned else None)
            figures.suite[name].append(result)
            print(
                f"  [suite {repeat + 1}/{options.suite_repeats}] {name:<10} {result.rps:6.0f} streams/s"
                f"  TTFB p50 {result.ttfb_p50 * 1e3:.2f} ms p99 {result.ttfb_p99 * 1e3:.2f} ms"
                f"  gap p50 {result.gap_p50 * 1e3:.2f} ms p99 {result.gap_p99 * 1e3:.2f} ms"
                f"  errors {result.errors}",
                flush=True,
            )


def measure_leak(target: Target, options: Options, figures: Figures) -> None:
    """Chat c=64 until leak_total requests; VmRSS after leak_warmup and then every leak_every."""
    print(f"  leak check: {options.leak_total:,} requests at c={LEAK_CONCURRENCY}", flush=True)
    scenario = Scenario("leak", "chat", LEAK_CONCURRENCY)
    served = 0
    rate = 0.0
    goal = min(options.leak_warmup, options.leak_total)
    while True:
        seconds = 2.0 if not rate else min(60.0, max(1.0, math.ceil((goal - served) / rate)))
        result = run(target, scenario, options, figures.pinned, duration=seconds, warmup=0.0)
        served += result.requests + result.errors
        rate = result.rps
        if served < goal:
            continue
        rss = memory_of(target.pids[0])[0]
        figures.leak.append((served, rss))
        print(f"  [leak] {served:>10,} requests  VmRSS {rss / 1e6:.1f} MB", flush=True)
        if goal >= options.leak_total:
            return
        goal = min(goal + options.leak_every, options.leak_total)


def measure_litellm(upstream: str, options: Options, figures: Figures, work_dir: Path) -> None:
    """LiteLLM's proxy (own venv, one worker, pinned like the data plane) under the same load."""
    proxy: litellm_peer.LiteLLMProxy | None = None
    try:
        proxy = litellm_peer.start(upstream, SUT_CPUS if figures.pinned else None, work_dir)
        target = Target(LITELLM, (proxy.url,), litellm_peer.MASTER_KEY, tuple(descendants(proxy.process.pid)))
        wait_answers(target, ("chat",), timeout=60.0)
        # LiteLLM imports and compiles on its first requests; keep that out of the figures.
        run(target, Scenario("warm-up", "chat", 16), options, figures.pinned, duration=LITELLM_WARMUP_SECONDS)
        scenarios = [s for s in options.scenarios if s.name in LITELLM_SCENARIOS]
        failed: set[str] = set()
        for repeat in range(options.repeats):
            for scenario in scenarios:
                if scenario.name in failed:
                    continue
                try:
                    result = run(target, scenario, options, figures.pinned)
                except RuntimeError as exc:
                    failed.add(scenario.name)
                    print(f"  LiteLLM {scenario.name} failed: {exc}", flush=True)
                    continue
                figures.runs[(scenario.name, LITELLM)].append(result)
                progress(f"{repeat + 1}/{options.repeats}", scenario.name, LITELLM, result)
        pids = descendants(proxy.process.pid)
        figures.rss[LITELLM] = (
            sum(memory_of(pid)[0] for pid in pids),
            sum(memory_of(pid)[1] for pid in pids),
        )
        figures.litellm = (
            f"LiteLLM {proxy.version} proxy (`litellm[proxy]` in its own venv), `--num_workers 1`, no"
            " database, master key only" + (f"; not measured: {', '.join(sorted(failed))}" if failed else "")
        )
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        figures.litellm = f"not measured: {reason}"
        print(f"  LiteLLM {figures.litellm}", flush=True)
    finally:
        if proxy is not None:
            stop_child(proxy.process, group=True)


def served_by(target: Target) -> int:
    """Requests the target's data planes counted in their /metrics (every one makes a usage event)."""
    served = 0
    for url in target.urls:
        with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
            text = response.read().decode()
        served += sum(
            int(float(line.rsplit(" ", 1)[1]))
            for line in text.splitlines()
            if line.startswith("hydite_requests_total{")
        )
    return served


def usage_rows(stack: Stack) -> int:
    """Rows in the stack's spend_logs."""
    import psycopg

    from hydite_common.settings import to_libpq_url, with_database_name

    assert stack.postgres is not None
    url = with_database_name(to_libpq_url(stack.postgres.url), stack.config.database_name)
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM spend_logs").fetchone()
    return int(row[0]) if row else 0


def verify_usage(stack: Stack, target: Target, figures: Figures) -> None:
    """Start spend-ingest and wait until it has written one row per request the data planes served."""
    served = served_by(target)
    print(f"  usage: {served:,} requests served; starting spend-ingest…", flush=True)
    started = time.monotonic()
    ingest = stack.start_spend_ingest()
    if figures.pinned:
        pin(ingest.process.pid, LOAD_CPUS)
    rows = usage_rows(stack)
    while rows < served and time.monotonic() - started < USAGE_INGEST_TIMEOUT_SECONDS:
        time.sleep(1.0)
        rows = usage_rows(stack)
    figures.usage = (served, rows, time.monotonic() - started)
    print(f"  usage: {rows:,} rows in spend_logs after {figures.usage[2]:.0f} s", flush=True)


def measure(options: Options, figures: Figures, data_dir: Path) -> None:
    """Start everything, run every phase, stop everything."""
    from hydite_common.devstack import Stack, StackConfig

    pinned = can_pin()
    figures.pinned = pinned
    if pinned:
        os.sched_setaffinity(0, LOAD_CPUS)
    stack = Stack(StackConfig.ephemeral(data_dir))
    children: list[subprocess.Popen[bytes]] = []
    try:
        upstream_port = free_port()
        upstream_url = f"http://127.0.0.1:{upstream_port}"
        children.append(
            start_child(
                [
                    "--role",
                    "upstream",
                    "--port",
                    str(upstream_port),
                    "--latency-ms",
                    str(options.latency_ms),
                    "--stream-interval-ms",
                    str(options.stream_interval_ms),
                ],
                LOAD_CPUS if pinned else None,
                upstream_port,
            )
        )
        bare_port = free_port()
        bare = start_child(
            ["--role", "bare", "--port", str(bare_port), "--upstream", upstream_url],
            SUT_CPUS if pinned else None,
            bare_port,
        )
        children.append(bare)
        print(f"  upstream and bare proxy up; starting the Hydite stack (pinned: {pinned})", flush=True)
        hydite, hydite_2dp = start_hydite(stack, upstream_url, pinned)
        targets = {
            DIRECT: Target(DIRECT, (upstream_url,), "sk-x", (), PACED_PREFIX),
            BARE: Target(BARE, (f"http://127.0.0.1:{bare_port}",), "sk-x", (bare.pid,), PACED_PREFIX),
            HYDITE: hydite,
            HYDITE_2DP: hydite_2dp,
        }
        measure_repeats(targets, options, figures)
        for name in (BARE, HYDITE, HYDITE_2DP):
            memories = [memory_of(pid) for pid in targets[name].pids]
            figures.rss[name] = (sum(m[0] for m in memories), sum(m[1] for m in memories))
        if options.suite_streams:
            measure_suite(targets, options, figures)
        if options.profile_seconds:
            print(f"  profiling the data plane for {options.profile_seconds} s with py-spy…", flush=True)
            runs = figures.runs.get((PROFILE_SCENARIO.name, HYDITE))
            cpu_us = median_of(runs, "cpu_us_per_request") if runs else math.nan
            figures.profile_scenario = PROFILE_SCENARIO.name
            figures.profile = profile_process(
                hydite.pids[0],
                options.profile_seconds,
                cpu_us,
                PROFILE_SCENARIO.name,
                lambda seconds: run(hydite, PROFILE_SCENARIO, options, pinned, duration=seconds, warmup=0.0),
            )
        if options.litellm:
            measure_litellm(upstream_url, options, figures, data_dir)
        if options.leak_total:
            measure_leak(hydite, options, figures)
        verify_usage(stack, hydite_2dp, figures)
    except Exception:
        for service in stack.services:
            print(f"--- {service.name}\n{service.log_tail()[-3000:]}", file=sys.stderr)
        raise
    finally:
        try:
            for child in reversed(children):
                stop_child(child)
        finally:
            stack.remove()


# ---------------------------------------------------------------- entry point


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line arguments (the --role ones are for the child processes)."""
    parser = argparse.ArgumentParser(prog="python -m bench.proxy_bench", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--smoke", action="store_true", help="about a second per configuration, Python generator; prints only"
    )
    mode.add_argument(
        "--quick", action="store_true", help="1 repeat, short runs, 100k-request leak check; prints only"
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument("--no-leak-check", action="store_true", help="skip the RSS leak check")
    parser.add_argument(
        "--python-load", action="store_true", help="use the Python load generator even where wrk is installed"
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="latency the fake upstream adds")
    parser.add_argument(
        "--role", choices=("main", "upstream", "bare", "load"), default="main", help=argparse.SUPPRESS
    )
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", default="", help=argparse.SUPPRESS)
    parser.add_argument(
        "--stream-interval-ms",
        type=float,
        default=None,
        help="pause between the chunks of the stream suite's streams (default 50; 2 in --smoke)",
    )
    parser.add_argument("--spec", default="", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def options_of(args: argparse.Namespace) -> Options:
    """Durations, repeats and phases of the chosen mode."""
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    smoke = mode == "smoke"
    full = mode == "full"
    scenarios = (
        Scenario("chat c=1", "chat", 1),
        Scenario("chat c=16", "chat", 16),
        *(() if smoke else (Scenario("chat c=64", "chat", 64), Scenario("chat c=256", "chat", 256))),
        Scenario("stream50 c=16", "stream", 16),
        Scenario("embeddings c=16", "embeddings", 16),
        Scenario(ANTHROPIC_SCENARIO, "anthropic-stream", 16),
    )
    use_wrk = not smoke and not args.python_load and wrk_path() is not None
    if not smoke and not args.python_load and not use_wrk:
        print("wrk not installed; using the Python load generator")
    return Options(
        mode=mode,
        duration=1.0 if smoke else 4.0 if full else 2.0,
        warmup=0.3 if smoke else 1.0,
        repeats=5 if full else 1,
        scenarios=scenarios,
        use_wrk=use_wrk,
        latency_ms=args.latency_ms,
        stream_interval_ms=args.stream_interval_ms or (2.0 if smoke else SUITE_INTERVAL_MS),
        suite_streams=16 if smoke else 512,
        suite_duration=1.0 if smoke else 5.0 if full else 3.0,
        suite_warmup=0.3 if smoke else 3.0,
        suite_repeats=3 if full else 1,
        profile_seconds=0 if smoke or args.no_profile else 10 if full else 5,
        leak_total=0 if smoke or args.no_leak_check else 1_000_000 if full else 100_000,
        leak_warmup=50_000 if full else 10_000,
        leak_every=200_000 if full else 20_000,
        litellm=not smoke and os.environ.get("LITELLM") == "1",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run a child role, or the whole benchmark; 0 when it completed (targets missed or not)."""
    args = parse_args(argv)
    if args.role == "upstream":
        serve_upstream(args.port, args.latency_ms, args.stream_interval_ms or 0.0)
        return 0
    if args.role == "bare":
        serve_bare_proxy(args.port, args.upstream)
        return 0
    if args.role == "load":
        run_load_role(args.spec)
        return 0
    options = options_of(args)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    figures = Figures(wrk=wrk_version() if options.use_wrk else "")
    data_dir = Path(tempfile.mkdtemp(prefix="hydite-proxy-bench-"))
    started = time.perf_counter()
    print(
        f"proxy benchmark: {options.mode}, {options.repeats} repeat(s) of {options.duration:g} s,"
        f" load by {'wrk + the Python generator' if options.use_wrk else 'the Python generator'}",
        flush=True,
    )
    try:
        measure(options, figures, data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    section = markdown_section(figures, options)
    print("\n" + section)
    print(f"(finished in {time.perf_counter() - started:.0f} s)")
    if options.mode == "full":
        write_section(SECTION_TITLE, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
