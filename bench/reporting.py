"""What every benchmark shares: statistics, verdicts, process memory, SIGTERM handling and its
own section of bench/RESULTS.md."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

RESULTS_PATH = Path(__file__).resolve().parent / "RESULTS.md"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) with linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_figures(latencies: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and max of a run's latencies (seconds)."""
    return {
        "p50": percentile(latencies, 0.5),
        "p90": percentile(latencies, 0.9),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies, default=math.nan),
    }


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo."""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return "unknown"


def verdict(ok: bool) -> str:
    """PASS or MISS."""
    return "PASS" if ok else "MISS"


def memory_of(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in bytes, from /proc/<pid>/status."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


def exit_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM unwinds like an error, so the finally blocks stop every process."""
    raise SystemExit(128 + signum)


def replace_section(existing: str, title: str, section: str) -> str:
    """existing with the section headed `title` replaced (or appended); other sections kept."""
    lines = existing.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == title), None)
    if start is None:
        head = existing.rstrip("\n") if existing.strip() else "# Benchmark results"
        return head + "\n\n" + section
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("# ", "## "))), len(lines))
    before = "\n".join(lines[:start]).rstrip("\n")
    after = "\n".join(lines[end:]).strip("\n")
    text = (before + "\n\n" if before else "") + section
    return text + ("\n" + after + "\n" if after else "")


def write_section(title: str, section: str) -> None:
    """Put a benchmark's section into bench/RESULTS.md, keeping the others."""
    existing = RESULTS_PATH.read_text() if RESULTS_PATH.exists() else ""
    RESULTS_PATH.write_text(replace_section(existing, title, section))
    print(f"wrote {RESULTS_PATH}")


FigureRow = tuple[str, str, str, str]
"""(measure, value, target, result) of a benchmark's figure table."""


def figures_markdown(environment: Sequence[tuple[str, str]], rows: Sequence[FigureRow]) -> list[str]:
    """The run's environment as a list, then the figures as a Markdown table."""
    lines = [f"- {name}: {value}" for name, value in environment]
    lines += ["", "| Measure | Value | Target | Result |", "| --- | --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return lines


def print_figures(
    environment: Sequence[tuple[str, str]], rows: Sequence[FigureRow], target_width: int
) -> None:
    """The run's environment, then the figures as an aligned table, on stdout."""
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print()
    for name, value in environment:
        print(f"{name}: {value}")
    print()
    for measure, value, target, result in rows:
        print(f"{measure:<{width}}  {value:<{value_width}}  {target:<{target_width}} {result}".rstrip())
