"""The benchmarks still run end to end (their --smoke modes), so they cannot rot unnoticed; their
load-generator plumbing (wrk's JSON line, the stream suite's response parser) is checked too."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.load import LoadSpec, run_wrk
from bench.processes import free_port, start_child, stop_child
from bench.proxy_bench import BODIES
from bench.stream_probe import StreamConnection
from bench.upstream import CHAT_PATH, STREAM_CHUNKS, stream_events

REPO_ROOT = Path(__file__).resolve().parents[1]
LONGEST_SMOKE_SECONDS = 120


@pytest.mark.timeout(LONGEST_SMOKE_SECONDS + 60)
@pytest.mark.parametrize(
    ("benchmark", "limit_seconds"),
    [("bench.config_bench", 120), ("bench.proxy_bench", 120), ("bench.ingest_bench", 120)],
)
def test_benchmark_smoke_runs(benchmark: str, limit_seconds: int) -> None:
    """`python -m <benchmark> --smoke` starts its processes, measures, cleans up and exits 0."""
    process = subprocess.Popen(
        [sys.executable, "-m", benchmark, "--smoke"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=limit_seconds)
    except subprocess.TimeoutExpired:
        # SIGTERM lets the benchmark stop the processes it started and drop its database.
        process.terminate()
        output, _ = process.communicate(timeout=60)
        pytest.fail(f"{benchmark} --smoke ran over {limit_seconds}s:\n{output[-4000:]}")
    assert process.returncode == 0, output[-6000:]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make bench installs it)")
def test_wrk_driver_reports_requests_and_latency() -> None:
    """Two wrk processes against the fake upstream give one merged result without errors."""
    port = free_port()
    upstream = start_child(["--role", "upstream", "--port", str(port)], None, port)
    try:
        url = f"http://127.0.0.1:{port}{CHAT_PATH}"
        spec = LoadSpec((url, url), "sk-x", BODIES["chat"], 4, duration=1.0, warmup=0.0)
        result = run_wrk(spec, (upstream.pid,), None)
    finally:
        stop_child(upstream)
    assert result.requests > 0 and result.errors == 0
    assert 0 < result.p50 <= result.p90 <= result.p99 <= result.max
    assert result.cpu_seconds >= 0


async def test_stream_probe_times_events_across_split_reads() -> None:
    """A chunked SSE response cut at awkward places yields one exchange with a gap per later event."""
    chunks, final, usage = stream_events()
    events = [*chunks, final, usage, b"data: [DONE]\n\n"]
    body = b"".join(b"%x\r\n%s\r\n" % (len(event), event) for event in events) + b"0\r\n\r\n"
    response = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    )

    class Sink(asyncio.Transport):
        """Accepts the request bytes."""

        def write(self, data: bytes | bytearray | memoryview) -> None:
            """Drop them."""

    connection = StreamConnection()
    connection.connection_made(Sink())
    exchange = connection.send(b"POST / HTTP/1.1\r\n\r\n")
    for start in range(0, len(response), 7):
        connection.data_received(response[start : start + 7])
    result = await asyncio.wait_for(exchange, 1)
    assert result.status == 200
    assert len(result.gaps) == len(events) - 1 == STREAM_CHUNKS + 2
