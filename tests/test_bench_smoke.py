"""The config benchmark still runs end to end (its --smoke mode), so it cannot rot unnoticed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_config_bench_smoke_runs() -> None:
    """`python -m bench.config_bench --smoke` starts, measures, cleans up and exits 0."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.config_bench", "--smoke"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
