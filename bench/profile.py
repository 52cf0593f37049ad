"""Where the data plane's time goes: py-spy records it under load, and the raw stacks are summed up.

The summary gives self time by package and by function and inclusive time of Hydite, NATS and
HTTP-client frames, as Markdown lines for bench/RESULTS.md.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path


def py_spy_path() -> Path | None:
    """py-spy beside this interpreter, or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    if beside.exists():
        return beside
    found = shutil.which("py-spy")
    return Path(found) if found else None


def profile_process(
    pid: int, seconds: int, cpu_us: float, scenario: str, drive: Callable[[float], object]
) -> list[str]:
    """py-spy record (raw) of pid while drive(seconds) loads it; summary lines (self and total)."""
    py_spy = py_spy_path()
    if py_spy is None:
        return ["py-spy not found (`pip install py-spy`); no profile"]
    out = Path(tempfile.mkdtemp(prefix="hydite-proxy-profile-")) / "profile.txt"
    spy = subprocess.Popen(
        [
            str(py_spy),
            "record",
            "-d",
            str(seconds),
            "--pid",
            str(pid),
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
    err = ""
    try:
        drive(seconds + 2.0)
        _, err = spy.communicate(timeout=seconds + 30)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    raw = out.read_text() if out.exists() else ""
    shutil.rmtree(out.parent, ignore_errors=True)
    if not raw:
        return [f"py-spy failed: {err.strip()[-300:]}"]
    return summarise_profile(raw, seconds, cpu_us, scenario)


def summarise_profile(raw: str, seconds: int, cpu_us: float, scenario: str) -> list[str]:
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
        f"at {scenario}):",
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
