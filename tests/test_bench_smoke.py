"""The benchmarks still run end to end (their --smoke modes), so they cannot rot unnoticed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
LONGEST_SMOKE_SECONDS = 180


@pytest.mark.timeout(LONGEST_SMOKE_SECONDS + 60)
@pytest.mark.parametrize(
    ("benchmark", "limit_seconds"), [("bench.config_bench", 120), ("bench.proxy_bench", 180)]
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
