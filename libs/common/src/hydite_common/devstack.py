"""Run the whole stack on one machine: Postgres, NATS, control plane, data plane(s), spend-ingest.

`make dev` runs this module; the cross-service tests use `Stack` to start the
same real processes with their own database, NATS prefix and free ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import nats
import orjson
import psycopg
from psycopg import sql

from hydite_common.embedded import RunningService, ensure_nats, ensure_postgres
from hydite_common.parent_death import die_with_parent
from hydite_common.settings import DEV_MASTER_KEY, DEV_SALT_KEY, to_libpq_url, with_database_name

READY_TIMEOUT_SECONDS = 60.0
SERVICES_STOP_SECONDS = 6.0
"""How long the services of a stack get, together, to exit after SIGTERM before they are killed."""
DEPENDENCIES_STOP_SECONDS = 3.0
"""Then how long embedded Postgres and NATS get, together: a whole stop stays under the 10 s a
supervisor (docker, supervisord) commonly waits before its SIGKILL."""
DEMO_KEY = "sk-hydite-demo-key-0000000000000000"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PortInUseError(RuntimeError):
    """A port the stack would listen on is taken (or given to two of its services)."""


def port_is_free(port: int) -> bool:
    """Whether a service could listen on 127.0.0.1:port now."""
    with socket.socket() as sock:
        # As the services' listeners do: a closed connection in TIME_WAIT does not hold the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class StackConfig:
    """Where the stack's dependencies are and which ports and names it uses."""

    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    database_name: str = "hydite"
    nats_url: str = "nats://127.0.0.1:4222"
    nats_prefix: str = "hydite"
    master_key: str = DEV_MASTER_KEY
    salt_key: str = DEV_SALT_KEY
    config_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    """What the stack's data planes show its control plane's config stream (a new one per stack)."""
    dataplane_port: int = 4000
    admin_port: int = 4001
    grpc_port: int = 50051
    ingest_port: int = 4002
    data_dir: Path = Path(".data")
    environment: str = "dev"
    log_level: str = "WARNING"
    log_to_files: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def ephemeral(cls, data_dir: Path) -> StackConfig:
        """A configuration with its own database, NATS prefix and free ports (tests)."""
        suffix = secrets.token_hex(4)
        return cls(
            database_url=os.environ.get("HYDITE_DATABASE_URL", cls.database_url),
            database_name=f"hydite_test_{suffix}",
            nats_url=os.environ.get("HYDITE_NATS_URL", cls.nats_url),
            nats_prefix=f"hydite_test_{suffix}",
            master_key="sk-test-master-" + secrets.token_hex(8),
            salt_key="test-salt-" + secrets.token_hex(8),
            dataplane_port=free_port(),
            admin_port=free_port(),
            grpc_port=free_port(),
            ingest_port=free_port(),
            data_dir=data_dir,
            environment="test",
            log_to_files=True,
        )


@dataclass
class ServiceProcess:
    """One service running as a child process."""

    name: str
    process: subprocess.Popen[bytes]
    health_url: str
    log_path: Path | None
    log_file: IO[bytes] | None = None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the service's log, for failure messages."""
        if self.log_path is None or not self.log_path.exists():
            return "(log on the terminal)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, wait, then SIGKILL; idempotent."""
        self.terminate()
        self.wait_stopped(time.monotonic() + timeout)

    def terminate(self) -> None:
        """Send SIGTERM if the process still runs, without waiting."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self, deadline: float) -> None:
        """Wait for the process to exit until deadline (time.monotonic()), then SIGKILL it; idempotent."""
        try:
            self.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None


def stop_all(services: list[ServiceProcess], timeout: float = SERVICES_STOP_SECONDS) -> None:
    """SIGTERM every service at once, give them one shared bound, then SIGKILL what is left."""
    for service in services:
        service.terminate()
    deadline = time.monotonic() + timeout
    for service in services:
        service.wait_stopped(deadline)


class Stack:
    """Starts and stops every process of a Hydite stack."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.postgres: RunningService | None = None
        self.nats: RunningService | None = None
        self.services: list[ServiceProcess] = []

    @property
    def base_url(self) -> str:
        """The first data plane's base URL."""
        return f"http://127.0.0.1:{self.config.dataplane_port}"

    @property
    def admin_url(self) -> str:
        """The control plane's admin URL."""
        return f"http://127.0.0.1:{self.config.admin_port}"

    def _env(self, **extra: str) -> dict[str, str]:
        c = self.config
        assert self.postgres is not None and self.nats is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("HYDITE_")}
        env.update(
            HYDITE_ENVIRONMENT=c.environment,
            HYDITE_LOG_LEVEL=c.log_level,
            HYDITE_DATABASE_URL=self.postgres.url,
            HYDITE_DATABASE_NAME=c.database_name,
            HYDITE_NATS_URL=self.nats.url,
            HYDITE_NATS_PREFIX=c.nats_prefix,
            HYDITE_MASTER_KEY=c.master_key,
            HYDITE_SALT_KEY=c.salt_key,
            HYDITE_CONFIG_TOKEN=c.config_token,
            HYDITE_HOST="127.0.0.1",
            HYDITE_ADMIN_PORT=str(c.admin_port),
            HYDITE_GRPC_PORT=str(c.grpc_port),
            HYDITE_INGEST_PORT=str(c.ingest_port),
            HYDITE_CONTROLPLANE_GRPC=f"127.0.0.1:{c.grpc_port}",
            HYDITE_CONTROLPLANE_URL=self.admin_url,
        )
        env.update(c.extra_env)
        env.update(extra)
        return env

    def listening_ports(self) -> list[tuple[int, str, str]]:
        """(port, what listens there, the variable that moves it) for each port start() binds.

        Embedded Postgres and NATS are not listed: when their URL's port is taken they take a free one.
        """
        c = self.config
        return [
            (c.dataplane_port, "data plane", "HYDITE_PORT"),
            (c.admin_port, "control plane admin API", "HYDITE_ADMIN_PORT"),
            (c.grpc_port, "control plane gRPC config stream", "HYDITE_GRPC_PORT"),
            (c.ingest_port, "spend-ingest", "HYDITE_INGEST_PORT"),
        ]

    def check_ports(self) -> None:
        """Raise PortInUseError, naming the port and its variable, unless every port is free.

        Run before anything starts: a service that cannot bind would die after the others
        started, and a readiness check could be answered by whatever holds its port.
        """
        claimed: dict[int, str] = {}
        for port, what, variable in self.listening_ports():
            if port in claimed:
                raise PortInUseError(f"port {port} is set for both {claimed[port]} and {variable}")
            claimed[port] = variable
            if not port_is_free(port):
                raise PortInUseError(
                    f"port {port} ({what}) is already in use on 127.0.0.1; set {variable} to a free port"
                )

    def start_dependencies(self) -> None:
        """Use reachable Postgres and NATS, or start embedded ones under data_dir."""
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self.postgres = ensure_postgres(self.config.database_url, self.config.data_dir.resolve())
        self.nats = ensure_nats(self.config.nats_url, self.config.data_dir.resolve())

    def spawn(self, name: str, module: str, port: int, *, wait: bool = True, **env: str) -> ServiceProcess:
        """Start one service module and (unless wait is false) wait until it is ready."""
        return self._spawn(name, module, port, wait, env)

    def _spawn(self, name: str, module: str, port: int, wait: bool, env: dict[str, str]) -> ServiceProcess:
        # A data plane's usage spool stays inside the stack's directory, removed with it.
        env = {"HYDITE_USAGE_SPOOL_DIR": str((self.config.data_dir / "spool" / name).resolve()), **env}
        log_path: Path | None = None
        log_file: IO[bytes] | None = None
        if self.config.log_to_files:
            log_dir = self.config.data_dir / "logs"
            log_dir.mkdir(parents=True, exist_ok=True)
            log_path = log_dir / f"{name}.log"
            log_file = log_path.open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            env=self._env(**env),
            stdout=log_file if log_file else None,
            stderr=subprocess.STDOUT if log_file else None,
            # Own session: a terminal's Ctrl-C or a supervisor's SIGTERM to our group reaches only
            # us, and stop() stops everything within its bound; should we die without stopping
            # them, the kernel sends them SIGTERM.
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
        service = ServiceProcess(
            name, process, f"http://127.0.0.1:{port}/health/readiness", log_path, log_file
        )
        self.services.append(service)
        if wait:
            self.wait_ready(service)
        return service

    def wait_ready(self, service: ServiceProcess, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Poll the readiness route; fail with the log tail if the process dies or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                raise RuntimeError(
                    f"{service.name} exited with {service.process.returncode}:\n{service.log_tail()}"
                )
            with (
                contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
                urllib.request.urlopen(service.health_url, timeout=1) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{service.name} not ready after {timeout:.0f}s:\n{service.log_tail()}")

    def start_controlplane(
        self, admin_port: int | None = None, grpc_port: int | None = None, **env: str
    ) -> ServiceProcess:
        """A control plane (runs migrations before it serves); other ports make another replica.
        env: extra HYDITE_* settings of this process."""
        admin_port = admin_port or self.config.admin_port
        grpc_port = grpc_port or self.config.grpc_port
        settings = {"HYDITE_ADMIN_PORT": str(admin_port), "HYDITE_GRPC_PORT": str(grpc_port), **env}
        return self._spawn(f"controlplane-{admin_port}", "hydite_controlplane", admin_port, True, settings)

    def start_spend_ingest(self) -> ServiceProcess:
        """The spend-ingest consumer."""
        return self.spawn("spend-ingest", "hydite_spend_ingest", self.config.ingest_port)

    def start_dataplane(
        self, port: int | None = None, node_id: str | None = None, grpc_port: int | None = None, **env: str
    ) -> ServiceProcess:
        """A data plane (of the control plane at grpc_port); ready once it holds a config snapshot.
        env: extra HYDITE_* settings of this process."""
        port = port or self.config.dataplane_port
        grpc_port = grpc_port or self.config.grpc_port
        node = node_id or f"dataplane-{port}"
        settings = {
            "HYDITE_PORT": str(port),
            "HYDITE_NODE_ID": node,
            "HYDITE_CONTROLPLANE_GRPC": f"127.0.0.1:{grpc_port}",
            "HYDITE_USAGE_SPOOL_DIR": str((self.config.data_dir / "spool" / node).resolve()),
            **env,
        }
        service = self._spawn(f"dataplane-{port}", "hydite_dataplane", port, True, settings)
        self._await_recorded(settings["HYDITE_NODE_ID"])
        return service

    def _await_recorded(self, node_id: str, timeout: float = 10.0) -> None:
        """Until the control plane has recorded the node's ACK of its first snapshot: from then on
        every admin write waits for the node (a node still loading is not waited for)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.config.admin_port}/config/status",
            headers={"Authorization": f"Bearer {self.config.master_key}"},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    nodes = orjson.loads(response.read())["nodes"]
            except (urllib.error.URLError, ConnectionError, TimeoutError, KeyError, orjson.JSONDecodeError):
                return  # no control plane here to record it
            if any(n["node_id"] == node_id and n["connected"] and not n["loading"] for n in nodes):
                return
            time.sleep(0.02)

    def stop_service(self, service: ServiceProcess) -> None:
        """Stop one process of the stack."""
        service.stop()
        if service in self.services:
            self.services.remove(service)

    def start(self) -> None:
        """Check the ports, then dependencies, control plane, spend-ingest and one data plane."""
        self.check_ports()
        self.start_dependencies()
        self.start_controlplane()
        self.start_spend_ingest()
        self.start_dataplane()

    def drop_namespace(self) -> None:
        """Drop this stack's database and its NATS streams (test and benchmark stacks)."""
        config = self.config
        if self.postgres is not None:
            admin_url = with_database_name(to_libpq_url(self.postgres.url), "postgres")
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(config.database_name)
                    )
                )
        if self.nats is not None:
            asyncio.run(_delete_streams(self.nats.url, config.nats_prefix.upper() + "_"))

    def stop_services(self) -> None:
        """Stop every service this stack started, all at once, within SERVICES_STOP_SECONDS."""
        stop_all(self.services)
        self.services.clear()

    def stop(self) -> None:
        """Stop every service, then the embedded dependencies: each group at once and within its
        bound, so the whole stop takes at most SERVICES_STOP_SECONDS + DEPENDENCIES_STOP_SECONDS."""
        self.stop_services()
        dependencies = [d for d in (self.nats, self.postgres) if d is not None]
        for dependency in dependencies:
            dependency.request_stop()
        deadline = time.monotonic() + DEPENDENCIES_STOP_SECONDS
        for dependency in dependencies:
            dependency.wait_stopped(deadline)

    def remove(self) -> None:
        """Stop the services, drop the database and NATS streams, then stop embedded dependencies:
        what a test or benchmark stack leaves behind is nothing."""
        try:
            self.stop_services()
            self.drop_namespace()
        finally:
            self.stop()

    def admin_call(self, method: str, path: str, body: object | None = None) -> tuple[int, object]:
        """Call an admin route with the master key; returns (status, parsed JSON)."""
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=orjson.dumps(body) if body is not None else None,
            headers={
                "Authorization": f"Bearer {self.config.master_key}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, orjson.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, orjson.loads(exc.read() or b"null")


async def _delete_streams(nats_url: str, prefix: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        # A KV bucket is the stream KV_<bucket>.
        prefixes = (prefix, f"KV_{prefix}")
        for info in await js.streams_info():
            if info.config.name and info.config.name.startswith(prefixes):
                await js.delete_stream(info.config.name)
    finally:
        await nc.close()


def register_demo(stack: Stack) -> None:
    """The `demo` model on the mock provider and a demo key; already present is fine."""
    for path, body in (
        (
            "/model/new",
            {
                "model_name": "demo",
                "litellm_params": {"model": "mock/demo"},
                "model_info": {"id": "demo-mock"},
            },
        ),
        ("/key/generate", {"key": DEMO_KEY, "key_alias": "demo", "models": ["demo"]}),
    ):
        status, payload = stack.admin_call("POST", path, body)
        if status not in (200, 409):
            raise RuntimeError(f"{path} failed with {status}: {payload!r}")


def _banner(stack: Stack) -> str:
    base = stack.base_url
    return f"""
Hydite is running.

  Base URL        {base}/v1
  Master key      {stack.config.master_key}   (admin API, e.g. POST {base}/key/generate)
  Demo key        {DEMO_KEY}   (may call model "demo")
  Admin API       {stack.admin_url}    gRPC config  127.0.0.1:{stack.config.grpc_port}

Try it:

  curl {base}/v1/chat/completions \\
    -H "Authorization: Bearer {DEMO_KEY}" -H "Content-Type: application/json" \\
    -d '{{"model": "demo", "messages": [{{"role": "user", "content": "Hello"}}]}}'

  python - <<'PY'
from openai import OpenAI
client = OpenAI(base_url="{base}/v1", api_key="{DEMO_KEY}")
reply = client.chat.completions.create(model="demo", messages=[{{"role": "user", "content": "Hello"}}])
print(reply.choices[0].message.content)
PY

  curl "{base}/spend/logs?api_key={DEMO_KEY}" -H "Authorization: Bearer {stack.config.master_key}"

Press Ctrl-C to stop everything.
"""


def _exit_on_sigterm(signum: int, frame: object) -> None:
    sys.exit(0)


def main() -> None:
    """`make dev`: start the stack in the foreground until Ctrl-C or SIGTERM."""
    # A shell starts a background job (`make dev &`) with SIGINT ignored, and Python then installs
    # no handler of its own: without this, kill -INT would do nothing.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    env = os.environ
    config = StackConfig(
        database_url=env.get("HYDITE_DATABASE_URL", StackConfig.database_url),
        database_name=env.get("HYDITE_DATABASE_NAME", StackConfig.database_name),
        nats_url=env.get("HYDITE_NATS_URL", StackConfig.nats_url),
        nats_prefix=env.get("HYDITE_NATS_PREFIX", StackConfig.nats_prefix),
        master_key=env.get("HYDITE_MASTER_KEY", DEV_MASTER_KEY),
        salt_key=env.get("HYDITE_SALT_KEY", DEV_SALT_KEY),
        dataplane_port=int(env.get("HYDITE_PORT", "4000")),
        admin_port=int(env.get("HYDITE_ADMIN_PORT", "4001")),
        grpc_port=int(env.get("HYDITE_GRPC_PORT", "50051")),
        ingest_port=int(env.get("HYDITE_INGEST_PORT", "4002")),
        data_dir=Path(env.get("HYDITE_DATA_DIR", ".data")),
    )
    stack = Stack(config)
    try:
        stack.check_ports()
    except PortInUseError as exc:
        sys.exit(f"hydite: {exc}")
    try:
        stack.start()
        register_demo(stack)
        print(_banner(stack), flush=True)
        while all(s.process.poll() is None for s in stack.services):
            time.sleep(0.5)
        dead = [s.name for s in stack.services if s.process.poll() is not None]
        print(f"stopping: {', '.join(dead)} exited", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C or SIGTERM must not abandon half-stopped children: the stop is bounded.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stopping Hydite…", file=sys.stderr, flush=True)
        stack.stop()


if __name__ == "__main__":
    main()
