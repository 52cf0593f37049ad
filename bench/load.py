"""Load generators of the proxy benchmark, each in its own process pinned to the load CPU.

The drivers give the same LoadResult: `wrk` (non-stream scenarios when it is installed; a Lua
script written at run time sets method, body and headers and prints one JSON line from done()),
a closed-loop aiohttp generator (streams, which need the time to first byte, --smoke, and the
fallback without wrk), and for the stream suite the lean per-event client of bench.stream_probe.
The CPU time of the system under test is read from /proc right before and after the timed window.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.processes import REPO_ROOT, cpu_seconds, listen_overflows, python_command, taskset
from bench.reporting import latency_figures, percentile
from bench.stream_probe import generate_streams

REQUEST_TIMEOUT_SECONDS = 10.0
WRK_QUANTILE_STEPS = 1000  # wrk prints its latency at every 0.1 %, so two runs can be merged

WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = [==[Bearer %(key)s]==]

function done(summary, latency, requests)
  local e = summary.errors
  local q = {}
  for i = 1, %(steps)d - 1 do q[i] = latency:percentile(100 * i / %(steps)d) end
  q[%(steps)d] = latency.max
  io.write(string.format(
    '{"requests":%%d,"status_errors":%%d,"socket_errors":%%d,"duration_us":%%d,' ..
    '"p50":%%d,"p90":%%d,"p99":%%d,"max":%%d,"quantiles_us":[%%s]}\\n',
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(q, ",")))
end
"""


@dataclass(frozen=True)
class LoadSpec:
    """One load shape against one target: URLs (connections split evenly), body, concurrency, timing.

    gaps=True times every SSE event with the lean client (the stream suite).
    """

    urls: tuple[str, ...]
    key: str
    body: str
    concurrency: int
    duration: float
    warmup: float
    stream: bool = False
    gaps: bool = False


@dataclass
class LoadResult:
    """The figures of one timed run; times in seconds, NaN where the driver has no such figure."""

    requests: int
    errors: int
    seconds: float
    cpu_seconds: float
    p50: float
    p90: float
    p99: float
    max: float
    ttfb_p50: float = math.nan
    ttfb_p99: float = math.nan
    gap_p50: float = math.nan
    gap_p99: float = math.nan
    listen_overflows: int = 0

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else math.nan

    @property
    def cpu_us_per_request(self) -> float:
        """CPU time of the system under test per request, µs."""
        return self.cpu_seconds / self.requests * 1e6 if self.requests else math.nan


def wrk_path() -> str | None:
    """The wrk binary, if installed."""
    return shutil.which("wrk")


def wrk_version() -> str:
    """`wrk -v`'s first line, e.g. 'wrk debian/4.1.0-3+b2 [epoll]'."""
    path = wrk_path()
    if path is None:
        return "not installed"
    output = subprocess.run([path, "-v"], capture_output=True, text=True, check=False).stdout
    return output.splitlines()[0].split(" Copyright")[0] if output else "unknown version"


def run_load(spec: LoadSpec, pids: Sequence[int], use_wrk: bool, cpus: set[int] | None) -> LoadResult:
    """Drive spec with wrk or the Python generator; CPU of pids over the timed window."""
    overflows = listen_overflows()
    result = run_wrk(spec, pids, cpus) if use_wrk else run_python(spec, pids, cpus)
    result.listen_overflows = listen_overflows() - overflows
    if result.requests == 0:
        raise RuntimeError(f"{spec.urls[0]}: no successful request ({result.errors} errors)")
    return result


# ---------------------------------------------------------------- wrk


def run_wrk(spec: LoadSpec, pids: Sequence[int], cpus: set[int] | None) -> LoadResult:
    """A warm-up run, then the timed run: one wrk process per URL, in parallel, results merged."""
    wrk = wrk_path()
    if wrk is None:
        raise RuntimeError("wrk is not installed")
    with tempfile.NamedTemporaryFile("w", prefix="hydite-bench-", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {"body": spec.body, "key": spec.key, "steps": WRK_QUANTILE_STEPS})
    try:
        if spec.warmup > 0:
            wrk_processes(wrk, Path(script.name), spec, math.ceil(spec.warmup), cpus)
        before = cpu_seconds(pids)
        outputs = wrk_processes(wrk, Path(script.name), spec, max(1, round(spec.duration)), cpus)
        after = cpu_seconds(pids)
    finally:
        Path(script.name).unlink(missing_ok=True)
    return merge_wrk(outputs, after - before)


def wrk_processes(
    wrk: str, script: Path, spec: LoadSpec, seconds: int, cpus: set[int] | None
) -> list[dict[str, Any]]:
    """Run one `wrk -t1` per URL with its share of the connections; their JSON lines."""
    shares = [
        spec.concurrency // len(spec.urls) + (1 if i < spec.concurrency % len(spec.urls) else 0)
        for i in range(len(spec.urls))
    ]
    processes: list[subprocess.Popen[str]] = []
    try:
        for url, connections in zip(spec.urls, shares, strict=True):
            command = [
                wrk,
                "-t1",
                f"-c{max(1, connections)}",
                f"-d{seconds}s",
                f"--timeout={REQUEST_TIMEOUT_SECONDS:.0f}s",
                "-s",
                str(script),
                url,
            ]
            processes.append(
                subprocess.Popen(
                    taskset(command, cpus),
                    cwd=REPO_ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        outputs: list[dict[str, Any]] = []
        for process in processes:
            out, err = process.communicate(timeout=seconds + REQUEST_TIMEOUT_SECONDS + 30)
            lines = [line for line in out.splitlines() if line.startswith("{")]
            if process.returncode != 0 or not lines:
                raise RuntimeError(f"wrk failed ({process.returncode}): {err.strip()[-500:] or out[-500:]}")
            outputs.append(orjson.loads(lines[-1]))
        return outputs
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def merge_wrk(outputs: Sequence[dict[str, Any]], cpu: float) -> LoadResult:
    """One LoadResult from the JSON lines of parallel wrk runs (latency quantiles merged by weight)."""
    completed = [int(o["requests"]) - int(o["status_errors"]) for o in outputs]
    errors = sum(int(o["status_errors"]) + int(o["socket_errors"]) for o in outputs)
    seconds = max(int(o["duration_us"]) for o in outputs) / 1e6
    if len(outputs) == 1:
        only = outputs[0]
        p50, p90, p99 = (int(only[name]) / 1e6 for name in ("p50", "p90", "p99"))
    else:
        points = sorted(
            (value / 1e6, requests / len(o["quantiles_us"]))
            for o, requests in zip(outputs, completed, strict=True)
            for value in o["quantiles_us"]
        )
        p50, p90, p99 = (weighted_quantile(points, q) for q in (0.5, 0.9, 0.99))
    return LoadResult(
        requests=sum(completed),
        errors=errors,
        seconds=seconds,
        cpu_seconds=cpu,
        p50=p50,
        p90=p90,
        p99=p99,
        max=max(int(o["max"]) for o in outputs) / 1e6,
    )


def weighted_quantile(points: Sequence[tuple[float, float]], q: float) -> float:
    """The q-quantile of sorted (value, weight) points."""
    cumulative = list(itertools.accumulate(weight for _, weight in points))
    if not cumulative or cumulative[-1] <= 0:
        return math.nan
    index = bisect.bisect_left(cumulative, q * cumulative[-1])
    return points[min(index, len(points) - 1)][0]


# ---------------------------------------------------------------- Python closed-loop generator


def run_python(spec: LoadSpec, pids: Sequence[int], cpus: set[int] | None) -> LoadResult:
    """One generator process (`--role load`); CPU of pids between its 'start' and 'end' lines."""
    command = python_command("--role", "load", "--spec", orjson.dumps(asdict(spec)).decode(), cpus=cpus)
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        before = after = 0.0
        result: dict[str, Any] | None = None
        for line in process.stdout:
            if line.strip() == "start":
                before = cpu_seconds(pids)
            elif line.strip() == "end":
                after = cpu_seconds(pids)
            elif line.startswith("{"):
                result = orjson.loads(line)
        process.wait(timeout=REQUEST_TIMEOUT_SECONDS + spec.duration + spec.warmup + 30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if result is None or process.returncode != 0:
        raise RuntimeError(f"load generator failed ({process.returncode}) against {spec.urls[0]}")
    figures = {name: math.nan if value is None else float(value) for name, value in result.items()}
    return LoadResult(
        requests=int(result["requests"]),
        errors=int(result["errors"]),
        seconds=figures["seconds"],
        cpu_seconds=after - before,
        p50=figures["p50"],
        p90=figures["p90"],
        p99=figures["p99"],
        max=figures["max"],
        ttfb_p50=figures.get("ttfb_p50", math.nan),
        ttfb_p99=figures.get("ttfb_p99", math.nan),
        gap_p50=figures.get("gap_p50", math.nan),
        gap_p99=figures.get("gap_p99", math.nan),
    )


async def generate_load(spec: LoadSpec) -> dict[str, Any]:
    """Closed loop: `concurrency` workers (spread over the URLs); 'start'/'end' around the timed window."""
    import aiohttp

    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {spec.key}"}
    body = spec.body.encode()
    latencies: list[float] = []
    ttfbs: list[float] = []
    errors = 0
    recording = False
    stop_at = 0.0
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def read_stream(response: aiohttp.ClientResponse) -> float:
            """Read an event stream to its end; the time its first bytes arrived."""
            chunk = await response.content.readany()
            first = time.perf_counter()
            while chunk:
                chunk = await response.content.readany()
            return first

        async def one(url: str) -> None:
            """One request, recorded when inside the timed window."""
            nonlocal errors
            started = time.perf_counter()
            first = started
            ok = False
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    if spec.stream:
                        first = await read_stream(response)
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

        async def worker(url: str) -> None:
            """Send requests back to back until the window closes."""
            while time.perf_counter() < stop_at:
                await one(url)

        urls = [spec.urls[i % len(spec.urls)] for i in range(spec.concurrency)]
        stop_at = time.perf_counter() + spec.warmup
        await asyncio.gather(*(worker(url) for url in urls))
        print("start", flush=True)
        recording = True
        started = time.perf_counter()
        stop_at = started + spec.duration
        await asyncio.gather(*(worker(url) for url in urls))
        elapsed = time.perf_counter() - started
        print("end", flush=True)
    result: dict[str, Any] = {
        "requests": len(latencies),
        "errors": errors,
        "seconds": elapsed,
        **latency_figures(latencies),
    }
    if spec.stream:
        result.update(ttfb_p50=percentile(ttfbs, 0.5), ttfb_p99=percentile(ttfbs, 0.99))
    return result


def run_load_role(spec_json: str) -> None:
    """Entry of the load-generator process: the figures as one JSON line on stdout."""
    import uvloop

    fields = orjson.loads(spec_json)
    spec = LoadSpec(**{**fields, "urls": tuple(fields["urls"])})
    if spec.gaps:
        result = uvloop.run(generate_streams(spec, REQUEST_TIMEOUT_SECONDS))
    else:
        result = uvloop.run(generate_load(spec))
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
        sys.stdout.flush()
