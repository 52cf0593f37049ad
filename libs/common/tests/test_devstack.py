"""Tests for hydite_common.devstack's entry point (`make dev`) as a real process tree: it stops every
child within its bound on SIGTERM or SIGINT, and refuses to start on a port already in use."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from hydite_common.devstack import (
    DEPENDENCIES_STOP_SECONDS,
    SERVICES_STOP_SECONDS,
    PortInUseError,
    Stack,
    StackConfig,
    free_port,
)

START_TIMEOUT_SECONDS = 60.0
STOP_BOUND_SECONDS = SERVICES_STOP_SECONDS + DEPENDENCIES_STOP_SECONDS + 2.0
BANNER = "Hydite is running."

Pid = tuple[int, str]
"""A process id with its start time, so a reused id is not taken for the same process."""


def _devstack_env(data_dir: pathlib.Path) -> dict[str, str]:
    """A `make dev` environment on free ports, with embedded Postgres and NATS under data_dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYDITE_")}
    env.update(
        HYDITE_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/postgres",
        HYDITE_NATS_URL=f"nats://127.0.0.1:{free_port()}",
        HYDITE_PORT=str(free_port()),
        HYDITE_ADMIN_PORT=str(free_port()),
        HYDITE_GRPC_PORT=str(free_port()),
        HYDITE_INGEST_PORT=str(free_port()),
        HYDITE_DATA_DIR=str(data_dir),
    )
    return env


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name, or None when the process is gone."""
    try:
        text = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _descendants(root: int) -> set[Pid]:
    """Every process below root, now."""
    parents: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
            started[int(entry.name)] = fields[19]
    found: set[Pid] = set()
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add((child, started[child]))
            todo.append(child)
    return found


def _alive(pids: set[Pid]) -> set[Pid]:
    """Those of pids still running (a zombie has ended)."""
    still = set()
    for pid, started in pids:
        fields = _stat(pid)
        if fields is not None and fields[19] == started and fields[0] != "Z":
            still.add((pid, started))
    return still


@dataclass
class Launched:
    """The devstack processes a test started and the children it saw them start."""

    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    children: set[Pid] = field(default_factory=set)


@pytest.fixture
def launch() -> Iterator[Launched]:
    """What a test launches; whatever of it still runs afterwards is killed."""
    launched = Launched()
    yield launched
    for process in launched.processes:
        launched.children |= _descendants(process.pid)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    for pid, _ in _alive(launched.children):
        os.kill(pid, signal.SIGKILL)


def _start(
    launched: Launched, tmp_path: pathlib.Path, env: dict[str, str], *, ignore_sigint: bool
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "hydite_common.devstack"]
    if ignore_sigint:
        # What a shell does to a background job (`make dev &`): SIGINT ignored, inherited by exec.
        argv = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *argv]
    with (tmp_path / "out.log").open("wb") as out, (tmp_path / "err.log").open("wb") as err:
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    launched.processes.append(process)
    return process


def _wait_for_banner(process: subprocess.Popen[bytes], tmp_path: pathlib.Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while BANNER not in (tmp_path / "out.log").read_text(errors="replace"):
        stderr = (tmp_path / "err.log").read_text(errors="replace")
        assert process.poll() is None, f"devstack exited with {process.returncode}:\n{stderr}"
        assert time.monotonic() < deadline, f"no banner within {START_TIMEOUT_SECONDS}s:\n{stderr}"
        time.sleep(0.1)


def _described(pids: set[Pid]) -> list[str]:
    """Each of pids with its command line, for a failure message."""
    described = []
    for pid, _ in sorted(pids):
        with contextlib.suppress(OSError):
            argv = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            described.append(f"{pid}: {b' '.join(argv).decode(errors='replace').strip()}")
    return described


def _service_pid(children: set[Pid], module: str) -> int:
    """The process among children that runs `python -m module`."""
    for pid, _ in children:
        with contextlib.suppress(OSError):
            if module in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[-2].decode():
                return pid
    raise AssertionError(f"no {module} among {children}")


@pytest.mark.parametrize(
    ("stop_signal", "ignore_sigint", "exit_code"),
    [(signal.SIGTERM, False, 0), (signal.SIGINT, True, 0), (signal.SIGKILL, False, -signal.SIGKILL)],
    ids=["sigterm-to-group", "sigint-when-started-with-sigint-ignored", "sigkill-to-group"],
)
def test_a_signal_to_the_group_stops_every_child_within_the_bound(
    tmp_path: pathlib.Path,
    launch: Launched,
    stop_signal: signal.Signals,
    ignore_sigint: bool,
    exit_code: int,
) -> None:
    """SIGTERM to the process group (a supervisor; here with one service frozen, deaf to it), SIGINT
    to a stack started in the background, or SIGKILL, which leaves the stack no time to stop
    anything: no service, Postgres or NATS process is left behind once the stop bound passed."""
    data_dir = tmp_path / "data"
    process = _start(launch, tmp_path, _devstack_env(data_dir), ignore_sigint=ignore_sigint)
    _wait_for_banner(process, tmp_path)
    children = _descendants(process.pid)
    launch.children |= children
    # Control plane, spend-ingest, data plane, Postgres (with its own workers) and NATS.
    assert len(children) >= 5, children
    if stop_signal == signal.SIGTERM:
        os.kill(_service_pid(children, "hydite_controlplane"), signal.SIGSTOP)

    os.killpg(process.pid, stop_signal)
    deadline = time.monotonic() + STOP_BOUND_SECONDS
    while _alive(children) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _alive(children)
    assert not left, f"still running {STOP_BOUND_SECONDS}s after {stop_signal.name}: {_described(left)}"
    assert process.wait(timeout=max(0.1, deadline - time.monotonic())) == exit_code


def test_a_port_in_use_stops_make_dev_before_anything_starts(
    tmp_path: pathlib.Path, launch: Launched
) -> None:
    """A listener on the control plane's admin port: one line naming the port and its variable,
    a non-zero exit, and neither Postgres nor NATS nor any service started."""
    data_dir = tmp_path / "data"
    env = _devstack_env(data_dir)
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        taken = squatter.getsockname()[1]
        env["HYDITE_ADMIN_PORT"] = str(taken)
        process = _start(launch, tmp_path, env, ignore_sigint=False)
        assert process.wait(timeout=30) != 0
    stderr = (tmp_path / "err.log").read_text().strip()
    assert stderr.count("\n") == 0, stderr
    assert f"port {taken}" in stderr and "HYDITE_ADMIN_PORT" in stderr, stderr
    assert not data_dir.exists() or not any(data_dir.iterdir())


@pytest.mark.parametrize(
    "variable", ["HYDITE_PORT", "HYDITE_ADMIN_PORT", "HYDITE_GRPC_PORT", "HYDITE_INGEST_PORT"]
)
def test_check_ports_names_the_variable_of_each_taken_port(tmp_path: pathlib.Path, variable: str) -> None:
    """Whichever of the stack's ports is taken, the error names it and the variable that moves it."""
    config = StackConfig.ephemeral(tmp_path)
    fields = {
        "HYDITE_PORT": "dataplane_port",
        "HYDITE_ADMIN_PORT": "admin_port",
        "HYDITE_GRPC_PORT": "grpc_port",
        "HYDITE_INGEST_PORT": "ingest_port",
    }
    Stack(config).check_ports()
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        taken = squatter.getsockname()[1]
        setattr(config, fields[variable], taken)
        with pytest.raises(PortInUseError, match=rf"port {taken} .*{variable}"):
            Stack(config).check_ports()


def test_check_ports_refuses_one_port_for_two_services(tmp_path: pathlib.Path) -> None:
    """Two services given the same port are refused before either starts."""
    config = StackConfig.ephemeral(tmp_path)
    config.ingest_port = config.admin_port
    with pytest.raises(PortInUseError, match="HYDITE_ADMIN_PORT and HYDITE_INGEST_PORT"):
        Stack(config).check_ports()
