"""Data plane overhead benchmark: Hydite's data plane against a bare aiohttp passthrough proxy.

`python -m bench.proxy_bench` starts a fake OpenAI upstream, a bare passthrough proxy (the
ceiling for a Python data plane) and a Hydite stack (control plane, data plane, spend-ingest)
on 127.0.0.1, loads each with a closed-loop aiohttp load generator in its own process, and
rewrites its section of bench/RESULTS.md. The system under test is pinned to CPU 0, the load
generator and the upstream to CPU 1. The primary figure is CPU time per request of the system
under test, from /proc/<pid>/stat. `--smoke` runs about a second per configuration and writes
nothing. Every process is stopped and the stack's namespace dropped afterwards, even on failure.
Targets are printed as PASS/MISS, never asserted: benchmarks are not tests.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import importlib.metadata
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from bench.reporting import exit_on_sigterm, memory_of, percentile, verdict, write_section

if TYPE_CHECKING:
    from hydite_common.devstack import Stack

REPO_ROOT = Path(__file__).resolve().parents[1]
SECTION_TITLE = "## Data plane overhead (bench/proxy_bench.py)"
CHAT_PATH = "/v1/chat/completions"
STREAM_CHUNKS = 50
SUT_CPUS = {0}
LOAD_CPUS = {1}
READY_TIMEOUT_SECONDS = 30.0
REQUEST_TIMEOUT_SECONDS = 10.0

TARGET_RPS_RATIO = 0.9
TARGET_ADDED_P50_MS = 0.35
TARGET_ADDED_P99_MS = 0.9

CHAT_RESPONSE = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
    }
)


# ---------------------------------------------------------------- child processes: upstream, bare proxy


def stream_chunk(index: int) -> bytes:
    """One SSE chunk of the fake streaming completion."""
    delta = {"role": "assistant", "content": "tok "} if index == 0 else {"content": "tok "}
    chunk = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def serve_upstream(port: int) -> None:
    """The fake OpenAI upstream: a fixed chat completion, or STREAM_CHUNKS SSE chunks."""
    import uvloop
    from aiohttp import web

    chunks = [stream_chunk(i) for i in range(STREAM_CHUNKS)]
    final = orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
    )
    usage = orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": "gpt-4o-mini",
            "choices": [],
            "usage": {"prompt_tokens": 12, "completion_tokens": STREAM_CHUNKS, "total_tokens": 62},
        }
    )

    async def chat(request: web.Request) -> web.StreamResponse:
        """POST /v1/chat/completions."""
        body = orjson.loads(await request.read())
        if not body.get("stream"):
            return web.Response(body=CHAT_RESPONSE, content_type="application/json")
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk)
        await response.write(b"data: " + final + b"\n\n")
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(b"data: " + usage + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def health(request: web.Request) -> web.Response:
        """GET /health."""
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(CHAT_PATH, chat)
    app.router.add_get("/health", health)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def serve_bare_proxy(port: int, upstream: str) -> None:
    """The bare passthrough proxy: one ClientSession, POST /v1/chat/completions forwarded as is."""
    import aiohttp
    import uvloop
    from aiohttp import web

    target = upstream + CHAT_PATH

    async def chat(request: web.Request) -> web.StreamResponse:
        """Forward the body; return a buffered body, or stream an event stream chunk by chunk."""
        session: aiohttp.ClientSession = request.app["session"]
        body = await request.read()
        async with session.post(target, data=body, headers={"Content-Type": "application/json"}) as upstream:
            content_type = upstream.headers.get("Content-Type", "application/json")
            if not content_type.startswith("text/event-stream"):
                return web.Response(
                    status=upstream.status, body=await upstream.read(), content_type="application/json"
                )
            response = web.StreamResponse(status=upstream.status, headers={"Content-Type": content_type})
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def health(request: web.Request) -> web.Response:
        """GET /health."""
        return web.Response(text="ok")

    async def session_context(app: web.Application) -> Any:
        """One ClientSession for the process lifetime."""
        app["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        yield
        await app["session"].close()

    app = web.Application()
    app.cleanup_ctx.append(session_context)
    app.router.add_post(CHAT_PATH, chat)
    app.router.add_get("/health", health)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# ---------------------------------------------------------------- child process: load generator


async def generate_load(
    url: str, key: str, concurrency: int, duration: float, warmup: float, stream: bool
) -> dict[str, Any]:
    """Closed loop: concurrency workers; prints 'start'/'end' around the timed window; the figures."""
    import aiohttp

    payload: dict[str, Any] = {"model": "bench", "messages": [{"role": "user", "content": "Hello"}]}
    if stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    body = orjson.dumps(payload)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    latencies: list[float] = []
    ttfbs: list[float] = []
    errors = 0
    recording = False
    stop_at = 0.0
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one() -> None:
            """One request, recorded when inside the timed window."""
            nonlocal errors
            started = time.perf_counter()
            first = started
            ok = False
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    if stream:
                        chunk = await response.content.readany()
                        first = time.perf_counter()
                        while chunk:
                            chunk = await response.content.readany()
                    else:
                        await response.read()
                        first = time.perf_counter()
                    ok = response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if recording:
                if ok:
                    latencies.append(time.perf_counter() - started)
                    ttfbs.append(first - started)
                else:
                    errors += 1

        async def worker() -> None:
            """Send requests back to back until the window closes."""
            while time.perf_counter() < stop_at:
                await one()

        stop_at = time.perf_counter() + warmup
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        print("start", flush=True)
        recording = True
        started = time.perf_counter()
        stop_at = started + duration
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        print("end", flush=True)
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": elapsed,
        "latencies": latencies,
        "ttfbs": ttfbs,
    }


def run_load_role(args: argparse.Namespace) -> None:
    """Entry of the load-generator process: the figures as one JSON line on stdout."""
    import uvloop

    result = uvloop.run(
        generate_load(args.url, args.key, args.concurrency, args.duration, args.warmup, args.stream)
    )
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- orchestration


@dataclass(frozen=True)
class Scenario:
    """One load shape."""

    name: str
    concurrency: int
    stream: bool


@dataclass(frozen=True)
class Target:
    """A system that answers chat completions."""

    name: str
    url: str
    key: str
    pid: int | None


@dataclass
class RunResult:
    """The figures of one timed run."""

    requests: int
    errors: int
    seconds: float
    cpu_seconds: float
    p50: float
    p90: float
    p99: float
    max: float
    ttfb_p50: float
    ttfb_p99: float

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else math.nan

    @property
    def cpu_us_per_request(self) -> float:
        """CPU time of the system under test per request, µs."""
        return self.cpu_seconds / self.requests * 1e6 if self.requests else math.nan


@dataclass
class Figures:
    """Every run by (scenario, target), plus the data plane's memory."""

    runs: dict[tuple[str, str], list[RunResult]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    rss_bytes: int = 0
    peak_rss_bytes: int = 0
    pinned: bool = False
    profile: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Options:
    """Durations and repeats."""

    duration: float
    warmup: float
    repeats: int
    scenarios: tuple[Scenario, ...]
    smoke: bool
    profile_seconds: int


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def can_pin() -> bool:
    """Pinning needs CPUs 0 and 1."""
    return os.sched_getaffinity(0) >= (SUT_CPUS | LOAD_CPUS)


def pin(pid: int, cpus: set[int]) -> None:
    """Pin every thread of a process to cpus (threads started later inherit it)."""
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(task), cpus)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all threads) from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def python_command(*args: str, cpus: set[int] | None) -> list[str]:
    """`python -m bench.proxy_bench args`, under taskset when pinning."""
    command = [sys.executable, "-m", "bench.proxy_bench", *args]
    if cpus is not None and shutil.which("taskset"):
        return ["taskset", "-c", ",".join(map(str, sorted(cpus))), *command]
    return command


def wait_http(
    url: str, process: subprocess.Popen[bytes] | None, timeout: float = READY_TIMEOUT_SECONDS
) -> None:
    """Poll a GET route until it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(url, timeout=1) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s")


def post_json(url: str, body: object, token: str) -> tuple[int, Any]:
    """POST JSON with a bearer token; (status, parsed JSON or None)."""
    request = urllib.request.Request(
        url,
        method="POST",
        data=orjson.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            data = response.read()
            return response.status, orjson.loads(data) if data else None
    except urllib.error.HTTPError as exc:
        data = exc.read()
        try:
            return exc.code, orjson.loads(data) if data else None
        except orjson.JSONDecodeError:
            return exc.code, data.decode(errors="replace")


def run_once(target: Target, scenario: Scenario, options: Options, pinned: bool) -> RunResult:
    """One load-generator process against target; CPU of target.pid over the timed window."""
    command = python_command(
        "--role",
        "load",
        "--url",
        target.url + CHAT_PATH,
        "--key",
        target.key,
        "--concurrency",
        str(scenario.concurrency),
        "--duration",
        str(options.duration),
        "--warmup",
        str(options.warmup),
        *(["--stream"] if scenario.stream else []),
        cpus=LOAD_CPUS if pinned else None,
    )
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        cpu_start = cpu_end = 0.0
        result: dict[str, Any] | None = None
        for line in process.stdout:
            if line.strip() == "start":
                cpu_start = cpu_seconds(target.pid) if target.pid else 0.0
            elif line.strip() == "end":
                cpu_end = cpu_seconds(target.pid) if target.pid else 0.0
            elif line.startswith("{"):
                result = orjson.loads(line)
        process.wait(timeout=REQUEST_TIMEOUT_SECONDS + options.duration + options.warmup + 30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if result is None or process.returncode != 0:
        raise RuntimeError(f"load generator failed ({process.returncode}) against {target.name}")
    latencies = result["latencies"]
    ttfbs = result["ttfbs"]
    if not latencies:
        raise RuntimeError(
            f"{target.name} {scenario.name}: no successful request ({result['errors']} errors)"
        )
    return RunResult(
        requests=result["requests"],
        errors=result["errors"],
        seconds=result["seconds"],
        cpu_seconds=cpu_end - cpu_start,
        p50=percentile(latencies, 0.5),
        p90=percentile(latencies, 0.9),
        p99=percentile(latencies, 0.99),
        max=max(latencies),
        ttfb_p50=percentile(ttfbs, 0.5),
        ttfb_p99=percentile(ttfbs, 0.99),
    )


def start_child(args: Sequence[str], cpus: set[int] | None, port: int) -> subprocess.Popen[bytes]:
    """A child role process; ready once GET /health answers."""
    process = subprocess.Popen(
        python_command(*args, cpus=cpus), cwd=REPO_ROOT, start_new_session=True, stdout=subprocess.DEVNULL
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", process)
    except BaseException:
        stop_child(process)
        raise
    return process


def stop_child(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, wait, then SIGKILL."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_hydite(stack: Stack, upstream: str, pinned: bool) -> Target:
    """Control plane, spend-ingest and data plane; model `bench` on the upstream and a key."""
    stack.start_dependencies()
    controlplane = stack.start_controlplane()
    ingest = stack.start_spend_ingest()
    dataplane = stack.start_dataplane()
    if pinned:
        pin(dataplane.process.pid, SUT_CPUS)
        pin(controlplane.process.pid, LOAD_CPUS)
        pin(ingest.process.pid, LOAD_CPUS)
    admin = stack.admin_url
    master = stack.config.master_key
    status, payload = post_json(
        admin + "/model/new",
        {
            "model_name": "bench",
            "litellm_params": {
                "model": "openai/gpt-4o-mini",
                "api_base": upstream + "/v1",
                "api_key": "sk-x",
            },
        },
        master,
    )
    if status != 200:
        raise RuntimeError(f"/model/new answered {status}: {payload!r}")
    status, payload = post_json(admin + "/key/generate", {"key_alias": "proxy-bench"}, master)
    if status != 200:
        raise RuntimeError(f"/key/generate answered {status}: {payload!r}")
    key = str(payload["key"])
    body = {"model": "bench", "messages": [{"role": "user", "content": "Hello"}]}
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        status, payload = post_json(stack.base_url + CHAT_PATH, body, key)
        if status == 200:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the data plane never answered 200: {status} {payload!r}")
        time.sleep(0.1)
    return Target("hydite", stack.base_url, key, dataplane.process.pid)


def profile_dataplane(target: Target, options: Options, pinned: bool, cpu_us: float) -> list[str]:
    """py-spy record (raw) of the data plane under chat c=16 load; summary lines (self and total)."""
    py_spy = Path(sys.executable).with_name("py-spy")
    if not py_spy.exists():
        return ["py-spy not found; no profile"]
    out = Path(tempfile.mkdtemp(prefix="hydite-proxy-profile-")) / "profile.txt"
    seconds = options.profile_seconds
    spy = subprocess.Popen(
        [
            str(py_spy),
            "record",
            "-d",
            str(seconds),
            "--pid",
            str(target.pid),
            "-f",
            "raw",
            "-o",
            str(out),
            "-r",
            "200",
            "--full-filenames",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        profile_options = Options(seconds + 2.0, 0.5, 1, options.scenarios, options.smoke, seconds)
        run_once(target, Scenario("chat c=16", 16, False), profile_options, pinned)
        _, err = spy.communicate(timeout=seconds + 30)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    raw = out.read_text() if out.exists() else ""
    shutil.rmtree(out.parent, ignore_errors=True)
    if not raw:
        return [f"py-spy failed: {err.strip()[-300:]}"]
    return summarise_profile(raw, seconds, cpu_us)


def summarise_profile(raw: str, seconds: int, cpu_us: float) -> list[str]:
    """Markdown lines from py-spy raw (collapsed) stacks: by package, self time, inclusive time."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    samples = background = 0
    for line in raw.splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [parse_frame(f) for f in stack_text.split(";")]
        frames = [f for f in frames if f[0]]
        if not frames:
            continue
        if frames[0][0].startswith("Thread._bootstrap"):
            # Threads parked in native code (the gRPC poller); /proc shows ~0 CPU for them.
            background += count
            continue
        samples += count
        leaf, leaf_package = frames[-1]
        own[leaf] += count
        packages["event loop (uvloop, native)" if leaf.startswith("run_app ") else leaf_package] += count
        for frame in {f[0] for f in frames}:
            total[frame] += count
    if not samples:
        return ["py-spy recorded no main-thread samples"]
    lines = [
        f"py-spy `record -f raw -r 200` for {seconds} s: {samples} main-thread samples (idle excluded;",
        f"{background} samples of background threads parked in native code left out — /proc shows",
        "they use no CPU). Percentages are of main-thread samples.",
        "",
        f"Self time by package (leaf frame's package; µs = share × Hydite's {cpu_us:.0f} µs CPU/request",
        "at chat c=16):",
        "",
    ]
    lines += [
        f"- {100 * n / samples:.1f}% ≈ {cpu_us * n / samples:.0f} µs/request: {name}"
        for name, n in packages.most_common(10)
    ]
    lines += ["", "Self time by function (top 15):", ""]
    lines += [f"- {100 * n / samples:.1f}% `{name}`" for name, n in own.most_common(15)]
    lines += ["", "Inclusive time, Hydite, NATS and aiohttp-client frames (top 20):", ""]
    ranked = [
        (n, c)
        for n, c in total.most_common(400)
        if ("hydite" in n or "nats" in n or "client" in n) and "__main__" not in n
    ]
    lines += [f"- {100 * c / samples:.1f}% `{name}`" for name, c in ranked[:20]]
    return lines


def parse_frame(frame: str) -> tuple[str, str]:
    """'func (/path/pkg/module.py:123)' as ('func (pkg/module.py)', package); ('', '') for thread frames."""
    frame = frame.strip()
    if frame.startswith(("process ", "thread ")):
        return "", ""
    name, _, location = frame.partition(" (")
    path = location.rstrip(")").rpartition(":")[0] or location.rstrip(")")
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if parts else path
    package = "stdlib"
    if "site-packages" in parts and parts.index("site-packages") + 2 < len(parts):
        index = parts.index("site-packages") + 1
        package, short = parts[index], "/".join(parts[index:])
    elif any(part.startswith("hydite_") for part in parts):
        index = next(i for i, part in enumerate(parts) if part.startswith("hydite_"))
        package, short = parts[index], "/".join(parts[index:])
    elif len(parts) >= 2 and parts[-2] in ("asyncio", "json", "logging", "email", "http"):
        package = parts[-2]
    return f"{name} ({short})", package


def measure(options: Options, figures: Figures, data_dir: Path) -> None:
    """Start everything, run the interleaved repeats, stop everything."""
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
                ["--role", "upstream", "--port", str(upstream_port)],
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
        hydite = start_hydite(stack, upstream_url, pinned)
        targets = [Target("bare", f"http://127.0.0.1:{bare_port}", "sk-x", bare.pid), hydite]
        direct = Target("direct", upstream_url, "sk-x", None)
        for repeat in range(options.repeats):
            for scenario in options.scenarios:
                for target in targets if repeat % 2 == 0 else targets[::-1]:
                    result = run_once(target, scenario, options, pinned)
                    figures.runs[(scenario.name, target.name)].append(result)
                    print(
                        f"  [{repeat + 1}/{options.repeats}] {scenario.name:<12} {target.name:<6}"
                        f" {result.rps:8.0f} RPS  {result.cpu_us_per_request:6.0f} µs CPU/req"
                        f"  p50 {result.p50 * 1e3:.2f} ms  p99 {result.p99 * 1e3:.2f} ms"
                        f"  errors {result.errors}",
                        flush=True,
                    )
                if scenario.concurrency == 1 and not scenario.stream:
                    result = run_once(direct, scenario, options, pinned)
                    figures.runs[(scenario.name, direct.name)].append(result)
                    print(
                        f"  [{repeat + 1}/{options.repeats}] {scenario.name:<12} direct"
                        f" {result.rps:8.0f} RPS  p50 {result.p50 * 1e3:.2f} ms"
                        f"  p99 {result.p99 * 1e3:.2f} ms",
                        flush=True,
                    )
        assert hydite.pid is not None
        figures.rss_bytes, figures.peak_rss_bytes = memory_of(hydite.pid)
        if options.profile_seconds:
            print(f"  profiling the data plane for {options.profile_seconds} s with py-spy…", flush=True)
            cpu_us = median_of(figures.runs[("chat c=16", "hydite")], "cpu_us_per_request")
            figures.profile = profile_dataplane(hydite, options, pinned, cpu_us)
    except Exception:
        for service in stack.services:
            print(f"--- {service.name}\n{service.log_tail()[-3000:]}", file=sys.stderr)
        raise
    finally:
        try:
            for child in children:
                stop_child(child)
            for service in stack.services:
                service.stop()
            stack.drop_namespace()
        finally:
            stack.stop()


# ---------------------------------------------------------------- report


def median_of(runs: Sequence[RunResult], attribute: str) -> float:
    """Median of one attribute (or property) over the repeats."""
    return statistics.median(float(getattr(run, attribute)) for run in runs)


def ms(seconds: float) -> str:
    """Seconds as milliseconds, two decimals."""
    return f"{seconds * 1e3:.2f}"


def result_rows(figures: Figures, options: Options) -> list[tuple[str, ...]]:
    """Per scenario and target: medians of RPS, CPU/request, latency."""
    rows: list[tuple[str, ...]] = []
    for scenario in options.scenarios:
        for target in ("direct", "bare", "hydite"):
            runs = figures.runs.get((scenario.name, target))
            if not runs:
                continue
            cpu = "–" if target == "direct" else f"{median_of(runs, 'cpu_us_per_request'):.0f}"
            latency = (
                f"{ms(median_of(runs, 'ttfb_p50'))} / {ms(median_of(runs, 'ttfb_p99'))} | "
                if scenario.stream
                else "– | "
            )
            rows.append(
                (
                    scenario.name,
                    target,
                    f"{median_of(runs, 'rps'):.0f}",
                    cpu,
                    latency
                    + f"{ms(median_of(runs, 'p50'))} / {ms(median_of(runs, 'p90'))} / "
                    + f"{ms(median_of(runs, 'p99'))} / {ms(median_of(runs, 'max'))}",
                    str(sum(r.errors for r in runs)),
                )
            )
    return rows


def ratio_rows(figures: Figures, options: Options) -> list[tuple[str, str, str, str]]:
    """(measure, value, target, PASS/MISS) rows: Hydite / bare ratios and added latency."""
    rows: list[tuple[str, str, str, str]] = []
    for scenario in options.scenarios:
        bare = figures.runs.get((scenario.name, "bare"))
        hydite = figures.runs.get((scenario.name, "hydite"))
        if not bare or not hydite:
            continue
        rps_ratio = median_of(hydite, "rps") / median_of(bare, "rps")
        bare_cpu = median_of(bare, "cpu_us_per_request")
        hydite_cpu = median_of(hydite, "cpu_us_per_request")
        judged = scenario.concurrency >= 16 and not scenario.stream
        rows.append(
            (
                f"{scenario.name}: RPS Hydite / bare",
                f"{rps_ratio:.2f}×",
                f"≥ {TARGET_RPS_RATIO}×" if judged else "",
                verdict(rps_ratio >= TARGET_RPS_RATIO) if judged else "",
            )
        )
        capacity = bare_cpu / hydite_cpu
        rows.append(
            (
                f"{scenario.name}: CPU/request Hydite / bare ({hydite_cpu:.0f} / {bare_cpu:.0f} µs, "
                f"+{hydite_cpu - bare_cpu:.0f} µs); one-core capacity ratio",
                f"{hydite_cpu / bare_cpu:.2f}× (capacity {capacity:.2f}×)",
                f"capacity ≥ {TARGET_RPS_RATIO}×" if judged else "",
                verdict(capacity >= TARGET_RPS_RATIO) if judged else "",
            )
        )
    c1 = next((s for s in options.scenarios if s.concurrency == 1 and not s.stream), None)
    direct = figures.runs.get((c1.name, "direct")) if c1 else None
    if c1 and direct:
        for target in ("bare", "hydite"):
            runs = figures.runs.get((c1.name, target))
            if not runs:
                continue
            added_p50 = (median_of(runs, "p50") - median_of(direct, "p50")) * 1e3
            added_p99 = (median_of(runs, "p99") - median_of(direct, "p99")) * 1e3
            judged = target == "hydite"
            rows.append(
                (
                    f"{c1.name}: added p50 latency over calling the upstream directly, {target}",
                    f"{added_p50:.3f} ms",
                    f"≤ {TARGET_ADDED_P50_MS} ms" if judged else "",
                    verdict(added_p50 <= TARGET_ADDED_P50_MS) if judged else "",
                )
            )
            rows.append(
                (
                    f"{c1.name}: added p99 latency over calling the upstream directly, {target}",
                    f"{added_p99:.3f} ms",
                    f"≤ {TARGET_ADDED_P99_MS} ms" if judged else "",
                    verdict(added_p99 <= TARGET_ADDED_P99_MS) if judged else "",
                )
            )
    rows.append(
        (
            "Data plane RSS after the runs (peak)",
            f"{figures.rss_bytes / 1e6:.0f} MB ({figures.peak_rss_bytes / 1e6:.0f} MB)",
            "",
            "",
        )
    )
    return rows


def environment(figures: Figures) -> list[tuple[str, str]]:
    """Date, machine and package versions of this run."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    packages = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("aiohttp", "uvloop", "orjson", "nats-py", "grpcio")
    )
    pinning = "SUT on CPU 0, load generator + upstream on CPU 1" if figures.pinned else "not pinned"
    return [
        ("Date (UTC)", datetime.now(UTC).strftime("%Y-%m-%d %H:%M")),
        ("Machine", f"{platform.machine()}, {cpu}, {os.cpu_count()} CPUs, {pinning}"),
        ("Python", platform.python_version()),
        ("Packages", packages),
    ]


def markdown_section(figures: Figures, options: Options) -> str:
    """This benchmark's section of RESULTS.md."""
    lines = [
        SECTION_TITLE,
        "",
        "Real processes on 127.0.0.1 (`make bench`): a fake OpenAI upstream (aiohttp + uvloop, fixed",
        f"completion with usage; streaming: {STREAM_CHUNKS} SSE chunks + usage chunk), a bare aiohttp +",
        "uvloop passthrough proxy with one ClientSession (the ceiling for a Python data plane), and",
        "Hydite's data plane (with control plane and spend-ingest, started by",
        "`hydite_common.devstack.Stack`). Load is a closed-loop aiohttp client in its own process,",
        "pinned with the upstream to the other core.",
        f"Each run: {options.warmup:g} s warm-up, {options.duration:g} s timed; bare and Hydite interleaved,",
        f"{options.repeats} repeats, medians shown. CPU/request = utime+stime of the system under test",
        "(/proc/<pid>/stat, 10 ms ticks) over the timed window / completed requests. `direct` = the load",
        "generator calling the upstream itself. The load generator and the upstream share one core, so",
        "measured RPS is bounded by that core; the one-core capacity ratio (bare CPU/req ÷ Hydite CPU/req)",
        "is the better reading of the 0.9× target.",
        "",
    ]
    lines += [f"- {name}: {value}" for name, value in environment(figures)]
    lines += [
        "",
        "| Scenario | Target | RPS | CPU µs/req | TTFB p50 / p99 ms"
        " | Latency p50 / p90 / p99 / max ms | Errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {' | '.join(row)} |" for row in result_rows(figures, options)]
    lines += ["", "| Measure | Value | Target | Result |", "| --- | --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in ratio_rows(figures, options)]
    if figures.profile:
        lines += ["", "### Where the time goes (py-spy, data plane under chat c=16)", ""]
        lines += figures.profile
    return "\n".join(lines) + "\n"


def print_report(figures: Figures, options: Options) -> None:
    """The figures on stdout."""
    print()
    for name, value in environment(figures):
        print(f"{name}: {value}")
    print()
    for row in result_rows(figures, options):
        print("  ".join(row))
    print()
    for measure_name, value, target, result in ratio_rows(figures, options):
        print(f"{measure_name}: {value}  {target} {result}".rstrip())
    if figures.profile:
        print("\n".join(["", "where the time goes:", *figures.profile]))


# ---------------------------------------------------------------- entry point


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line arguments (the --role ones are for the child processes)."""
    parser = argparse.ArgumentParser(prog="python -m bench.proxy_bench", description=__doc__)
    parser.add_argument(
        "--smoke", action="store_true", help="about a second per configuration; no RESULTS.md"
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile of the full run")
    parser.add_argument(
        "--role", choices=("main", "upstream", "bare", "load"), default="main", help=argparse.SUPPRESS
    )
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", default="", help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--key", default="sk-x", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=float, default=0.2, help=argparse.SUPPRESS)
    parser.add_argument("--stream", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a child role, or the whole benchmark; 0 when it completed (targets missed or not)."""
    args = parse_args(argv)
    if args.role == "upstream":
        serve_upstream(args.port)
        return 0
    if args.role == "bare":
        serve_bare_proxy(args.port, args.upstream)
        return 0
    if args.role == "load":
        run_load_role(args)
        return 0
    smoke = bool(args.smoke)
    scenarios = (
        Scenario("chat c=1", 1, False),
        Scenario("chat c=16", 16, False),
        *(() if smoke else (Scenario("chat c=64", 64, False),)),
        Scenario(f"stream{STREAM_CHUNKS} c=16", 16, True),
    )
    options = Options(
        duration=1.0 if smoke else 4.0,
        warmup=0.3 if smoke else 1.0,
        repeats=1 if smoke else 3,
        scenarios=scenarios,
        smoke=smoke,
        profile_seconds=0 if smoke or args.no_profile else 10,
    )
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    figures = Figures()
    data_dir = Path(tempfile.mkdtemp(prefix="hydite-proxy-bench-"))
    started = time.perf_counter()
    print(
        f"proxy benchmark: {'smoke' if smoke else 'full'},"
        f" {options.repeats} repeats of {options.duration:g} s"
    )
    try:
        measure(options, figures, data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print_report(figures, options)
    print(f"\n(finished in {time.perf_counter() - started:.0f} s)")
    if not smoke:
        write_section(SECTION_TITLE, markdown_section(figures, options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
