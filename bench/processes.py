"""Child processes of the proxy benchmark: ports, CPU pinning, CPU time from /proc, start and stop.

The system under test runs on SUT_CPUS, the load generator and the fake upstream on LOAD_CPUS, so
figures are per core. Every child is started in its own session and stopped by its PID (SIGTERM,
then SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SUT_CPUS = {0}
LOAD_CPUS = {1}
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0


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


def taskset(command: Sequence[str], cpus: set[int] | None) -> list[str]:
    """command under `taskset -c <cpus>` when pinning (and taskset exists)."""
    if cpus is not None and shutil.which("taskset"):
        return ["taskset", "-c", ",".join(map(str, sorted(cpus))), *command]
    return list(command)


def python_command(*args: str, cpus: set[int] | None) -> list[str]:
    """`python -m bench.proxy_bench args`, under taskset when pinning."""
    return taskset([sys.executable, "-m", "bench.proxy_bench", *args], cpus)


def descendants(pid: int) -> list[int]:
    """pid and every process below it (from /proc/<pid>/task/*/children)."""
    found = [pid]
    index = 0
    while index < len(found):
        current = found[index]
        index += 1
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with contextlib.suppress(OSError):
                    children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
                    found.extend(int(child) for child in children)
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """utime + stime of processes (all their threads) from /proc/<pid>/stat, summed."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def listen_overflows() -> int:
    """The kernel's count of connections dropped at a full accept queue (TcpExt ListenOverflows)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines()]
        names, values = (line for line in lines if line and line[0] == "TcpExt:")
        return int(values[names.index("ListenOverflows")])
    return 0


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


def start_child(args: Sequence[str], cpus: set[int] | None, port: int) -> subprocess.Popen[bytes]:
    """A child role process of bench.proxy_bench; ready once GET /health answers."""
    process = subprocess.Popen(
        python_command(*args, cpus=cpus), cwd=REPO_ROOT, start_new_session=True, stdout=subprocess.DEVNULL
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", process)
    except BaseException:
        stop_child(process)
        raise
    return process


def stop_child(process: subprocess.Popen[bytes], group: bool = False) -> None:
    """SIGTERM, wait, then SIGKILL; group=True signals the child's own process group (its workers)."""
    if process.poll() is not None and not group:
        return

    def send(signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(process.pid, signum)
            else:
                process.send_signal(signum)

    send(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        process.wait()
    if group:
        # Workers that outlived the leader are still in its process group.
        send(signal.SIGKILL)
