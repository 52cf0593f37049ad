"""The benchmarks still run end to end (their --smoke modes), so they cannot rot unnoticed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SMOKE_TIMEOUT_SECONDS = 120
PROXY_SMOKE_TIMEOUT_SECONDS = 180


@pytest.mark.timeout(SMOKE_TIMEOUT_SECONDS + 60)
def test_config_bench_smoke_runs() -> None:
    """`python -m bench.config_bench --smoke` starts, measures, cleans up and exits 0."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.config_bench", "--smoke"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=SMOKE_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        # SIGTERM lets the benchmark stop the services it started and drop its database.
        process.terminate()
        output, _ = process.communicate(timeout=60)
        pytest.fail(f"the smoke benchmark ran over {SMOKE_TIMEOUT_SECONDS}s:\n{output[-4000:]}")
    assert process.returncode == 0, output[-6000:]


@pytest.mark.timeout(PROXY_SMOKE_TIMEOUT_SECONDS + 60)
def test_proxy_bench_smoke_runs() -> None:
    """`python -m bench.proxy_bench --smoke` starts upstream, bare proxy and stack, measures, exits 0."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.proxy_bench", "--smoke"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=PROXY_SMOKE_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        # SIGTERM lets the benchmark stop the processes it started and drop its database.
        process.terminate()
        output, _ = process.communicate(timeout=60)
        pytest.fail(f"the proxy smoke benchmark ran over {PROXY_SMOKE_TIMEOUT_SECONDS}s:\n{output[-4000:]}")
    assert process.returncode == 0, output[-6000:]
