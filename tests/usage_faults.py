"""A stack built to be broken, and the load and the ledger that show whether usage survived it.

`FaultStack` runs every process a usage event passes through on servers of its own (NATS with its
own store, an embedded Postgres, the control plane, spend-ingest, two data planes with a spool
directory each, a fake OpenAI upstream) and can kill or restart any of them. `LoadRun` sends a known
mix of requests from a thread while a test breaks something, and records every answer's
x-request-id. `Ledger` reads what spend-ingest wrote for a key and checks it against those ids.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import nats
import psycopg

from hydite_common.devstack import ServiceProcess, Stack, StackConfig, free_port
from hydite_common.embedded import RunningService, ensure_nats, ensure_postgres
from hydite_common.keys import hash_key
from hydite_common.settings import BaseServiceSettings, to_libpq_url, with_database_name
from hydite_common.usage_stream import dead_letter_stream_name, usage_stream_name, usage_subject
from tests.fakes.openai_server import FAKE_USAGE, FakeOpenAI, FakeServerThread
from tests.harness import FAKE_UPSTREAM_KEY, consumer_settled, unique, usage_waiting, wait_until

INPUT_COST_PER_TOKEN = 1e-6
OUTPUT_COST_PER_TOKEN = 3e-6
BILLED_COST = FAKE_USAGE["prompt_tokens"] * INPUT_COST_PER_TOKEN + FAKE_USAGE["completion_tokens"] * (
    OUTPUT_COST_PER_TOKEN
)
"""What one answered call costs: the fake reports the same usage for every answer."""
FLUSH_MS = 50
SPEND_TOLERANCE = 1e-9
INGEST_TIMEOUT_SECONDS = 60.0
CONSUMER_ACK_WAIT_SECONDS = 2.0
"""spend-ingest's ack wait: a batch fetched by a killed consumer comes back after it, not after 30 s."""
STREAM_DELAY_SECONDS = 0.05
"""Between the events of the fake's `stream-delay` model: a stream of it lasts about 0.4 s."""


class Kind(Enum):
    """What a request of the load does, and so what its usage row must say."""

    CHAT = "chat"
    STREAM = "stream"
    ABORTED_STREAM = "aborted_stream"
    """Read up to its first chunk, then the client hangs up."""
    SLOW_STREAM = "slow_stream"
    """A stream that stays in flight for about 0.4 s."""
    RETRIED = "retried"
    """A model group of a failing deployment (500) and a working one: retried on the other at
    once, until the failing one is cooled down."""
    FALLEN_BACK = "fallen_back"
    """A model group whose one deployment refuses the context (400), falling back to the priced one."""
    UPSTREAM_ERROR = "upstream_error"
    """The provider answers 400 (content policy): not retried, no cooldown."""
    REFUSED = "refused"
    """A model nobody deployed: the gateway answers 404 without calling anyone."""

    @property
    def billed(self) -> bool:
        """Whether the provider answered, so the row carries the fake's usage and a cost."""
        return self not in (Kind.UPSTREAM_ERROR, Kind.REFUSED)


MIX: tuple[Kind, ...] = (
    *(Kind.CHAT,) * 6, *(Kind.STREAM,) * 5, *(Kind.ABORTED_STREAM,) * 3, Kind.RETRIED, Kind.FALLEN_BACK,
    *(Kind.UPSTREAM_ERROR,) * 2, *(Kind.REFUSED,) * 2,
)  # fmt: skip
"""Request i is MIX[i % len(MIX)]."""
MIX_WITH_SLOW_STREAMS: tuple[Kind, ...] = (*MIX[:-1], Kind.SLOW_STREAM)
"""The mix with one request in twenty a stream that is still in flight when something happens."""
MIX_WITHOUT_ABORTS: tuple[Kind, ...] = tuple(
    Kind.STREAM if kind is Kind.ABORTED_STREAM else kind for kind in MIX
)
"""The mix with no client hanging up: every answer that arrived whole was billed before it ended."""


@dataclass(frozen=True, slots=True)
class ModelGroups:
    """The model group names each kind of request calls."""

    priced: str
    slow_stream: str
    retried: str
    fallen_back: str
    broken: str
    missing: str

    def for_kind(self, kind: Kind) -> str:
        """The model a request of this kind names."""
        named = {
            Kind.SLOW_STREAM: self.slow_stream,
            Kind.RETRIED: self.retried,
            Kind.FALLEN_BACK: self.fallen_back,
            Kind.UPSTREAM_ERROR: self.broken,
            Kind.REFUSED: self.missing,
        }
        return named.get(kind, self.priced)


@dataclass
class DataPlane:
    """One data plane of the fault stack: where it listens, its identity and its spool."""

    port: int
    node_id: str
    spool_dir: Path
    service: ServiceProcess | None = None

    @property
    def base_url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"


def _kill(dependency: RunningService) -> None:
    """SIGKILL an embedded server and reap it."""
    process = dependency._process
    assert process is not None, "not a server this stack started"
    process.send_signal(signal.SIGKILL)
    dependency.wait_stopped(time.monotonic() + 10)


class FaultStack:
    """Every process of the usage path, on servers of its own, each of which can be broken."""

    def __init__(self, data_dir: Path) -> None:
        config = StackConfig.ephemeral(data_dir)
        # Free ports: nothing answers there, so ensure_* start servers this stack alone may kill.
        config.database_url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
        config.nats_url = f"nats://127.0.0.1:{free_port()}"
        config.extra_env = {
            "HYDITE_USAGE_FLUSH_MS": str(FLUSH_MS),
            "HYDITE_CONSUMER_ACK_WAIT_SECONDS": str(CONSUMER_ACK_WAIT_SECONDS),
        }
        self.stack = Stack(config)
        self.data_dir = data_dir
        self.dataplanes = [
            DataPlane(port, f"faults-{index}", data_dir / f"spool-{index}")
            for index, port in enumerate((config.dataplane_port, free_port()))
        ]
        self.fake = FakeOpenAI(api_key=FAKE_UPSTREAM_KEY, stream_interval=STREAM_DELAY_SECONDS)
        self._fake_server = FakeServerThread(self.fake.app())
        self.fake_base = ""
        self.spend_ingest: ServiceProcess | None = None
        self.settings = BaseServiceSettings(nats_prefix=config.nats_prefix, nats_url=config.nats_url)
        self.admin: httpx.Client | None = None

    # Lifecycle

    def start(self) -> None:
        """Start everything: the fake, NATS, Postgres, control plane, spend-ingest, both data planes."""
        self.fake_base = self._fake_server.start() + "/v1"
        stack = self.stack
        stack.check_ports()
        stack.start_dependencies()
        for dependency in (stack.nats, stack.postgres):
            assert dependency is not None and dependency.embedded, "the fault stack needs servers of its own"
        stack.start_controlplane()
        self.spend_ingest = stack.start_spend_ingest()
        for dataplane in self.dataplanes:
            self.start_dataplane(dataplane)
        self.admin = httpx.Client(
            base_url=stack.admin_url,
            headers={"Authorization": f"Bearer {stack.config.master_key}"},
            timeout=10,
        )

    def remove(self) -> None:
        """Stop and remove every process and what they stored (the fake last)."""
        try:
            if self.admin is not None:
                self.admin.close()
            self.stack.remove()
        finally:
            self._fake_server.stop()

    def pids(self) -> list[int]:
        """The process ids of every server and service this stack runs now."""
        services = [service.process.pid for service in self.stack.services]
        dependencies = [
            dependency._process.pid
            for dependency in (self.stack.nats, self.stack.postgres)
            if dependency is not None and dependency._process is not None
        ]
        return services + dependencies

    def heal(self) -> None:
        """Start again whatever is stopped: NATS, Postgres, spend-ingest, a data plane."""
        stack = self.stack
        if stack.nats is not None and stack.nats._process is None:
            self.start_nats()
        if stack.postgres is not None and stack.postgres._process is None:
            self._start_postgres()
        if self.spend_ingest is None:
            self.start_spend_ingest()
        for dataplane in self.dataplanes:
            if dataplane.service is None:
                self.start_dataplane(dataplane)

    # Faults

    def kill_nats(self) -> None:
        """SIGKILL the NATS server."""
        assert self.stack.nats is not None
        _kill(self.stack.nats)

    def start_nats(self) -> None:
        """Start NATS again on its port and store."""
        config = self.stack.config
        before = self.stack.nats.url if self.stack.nats is not None else None
        self.stack.nats = ensure_nats(config.nats_url, config.data_dir.resolve())
        assert self.stack.nats.embedded and self.stack.nats.url == before, self.stack.nats

    def restart_postgres(self) -> None:
        """Fast shutdown of Postgres, then start it again on the same data directory and port."""
        stack = self.stack
        assert stack.postgres is not None
        before = stack.postgres.url
        stack.postgres.stop()
        assert self._start_postgres() == before

    def _start_postgres(self) -> str:
        """Start Postgres on its port and data directory; its URL."""
        stack = self.stack
        stack.postgres = ensure_postgres(stack.config.database_url, stack.config.data_dir.resolve())
        assert stack.postgres.embedded, stack.postgres
        return stack.postgres.url

    def kill_spend_ingest(self) -> None:
        """SIGKILL spend-ingest."""
        assert self.spend_ingest is not None
        self._kill_service(self.spend_ingest)
        self.spend_ingest = None

    def start_spend_ingest(self) -> None:
        """Start spend-ingest (it binds the same durable consumer)."""
        self.spend_ingest = self.stack.start_spend_ingest()

    def start_dataplane(self, dataplane: DataPlane) -> None:
        """Start (or restart) a data plane with its port, node id and spool directory."""
        dataplane.spool_dir.mkdir(parents=True, exist_ok=True)
        dataplane.service = self.stack.start_dataplane(
            dataplane.port, dataplane.node_id, HYDITE_USAGE_SPOOL_DIR=str(dataplane.spool_dir)
        )

    def add_dataplane(self, name: str) -> DataPlane:
        """One more data plane, with a node id never used before (its reconciliation counts start at
        zero) and a spool directory of its own."""
        node_id = unique(f"faults-{name}")
        dataplane = DataPlane(free_port(), node_id, self.data_dir / f"spool-{node_id}")
        self.start_dataplane(dataplane)
        self.dataplanes.append(dataplane)
        return dataplane

    def retire_dataplane(self, dataplane: DataPlane) -> None:
        """Stop a data plane added for one scenario (drained by SIGTERM) and forget it."""
        if dataplane.service is not None:
            self.terminate_dataplane(dataplane)
        self.dataplanes.remove(dataplane)

    def kill_dataplane(self, dataplane: DataPlane) -> None:
        """SIGKILL a data plane."""
        assert dataplane.service is not None
        self._kill_service(dataplane.service)
        dataplane.service = None

    def terminate_dataplane(self, dataplane: DataPlane, timeout: float = 30.0) -> int:
        """SIGTERM a data plane and wait until it has drained and exited; its exit code."""
        service = dataplane.service
        assert service is not None
        service.terminate()
        code = service.process.wait(timeout)
        self.stack.stop_service(service)
        dataplane.service = None
        return code

    def _kill_service(self, service: ServiceProcess) -> None:
        service.process.send_signal(signal.SIGKILL)
        service.process.wait(10)
        self.stack.stop_service(service)

    # Setup of what the load calls

    def deploy(self) -> ModelGroups:
        """The model groups the load calls, every deployment at the same price per token."""
        groups = ModelGroups(
            priced=unique("faults-priced"),
            slow_stream=unique("faults-slow"),
            retried=unique("faults-retried"),
            fallen_back=unique("faults-fallback"),
            broken=unique("faults-broken"),
            missing=unique("faults-missing"),
        )
        fallback = {"context_window_fallbacks": [groups.priced]}
        for group, upstream, info in (
            (groups.priced, "gpt-4o-mini", {}),
            (groups.slow_stream, "stream-delay", {}),
            (groups.retried, "fail-500", {}),
            (groups.retried, "gpt-4o-mini", {}),
            (groups.fallen_back, "fail-400-context", fallback),
            (groups.broken, "fail-400-policy", {}),
        ):
            self._deploy(group, upstream, info)
        return groups

    def _deploy(self, group: str, upstream: str, info: dict[str, Any]) -> None:
        self._admin_post(
            "/model/new",
            {
                "model_name": group,
                "litellm_params": {
                    "model": f"openai/{upstream}",
                    "api_base": self.fake_base,
                    "api_key": FAKE_UPSTREAM_KEY,
                    "input_cost_per_token": INPUT_COST_PER_TOKEN,
                    "output_cost_per_token": OUTPUT_COST_PER_TOKEN,
                },
                "model_info": {"id": unique(group), **info},
            },
        )

    def new_key(self, alias: str) -> str:
        """A key of its own for one scenario (its rows are told apart by its hash)."""
        return str(self._admin_post("/key/generate", {"key_alias": unique(alias)})["key"])

    def _admin_post(self, path: str, body: dict[str, Any]) -> Any:
        assert self.admin is not None
        response = self.admin.post(path, json=body)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        return response.json()

    # Reading the usage path

    @property
    def database_url(self) -> str:
        """The stack's own database, as psycopg takes it."""
        assert self.stack.postgres is not None
        return with_database_name(to_libpq_url(self.stack.postgres.url), self.stack.config.database_name)

    def nats_url(self) -> str:
        """Where NATS listens now."""
        assert self.stack.nats is not None
        return self.stack.nats.url

    def consumer_settled(self) -> bool:
        """Whether spend-ingest has taken and acknowledged every message of the usage stream."""
        return consumer_settled(self.nats_url(), self.settings)

    def stream_last_seq(self, stream: str) -> int:
        """The sequence of the newest message of a stream."""
        return asyncio.run(self._last_seq(stream))

    def stream_messages(self, stream: str, after_seq: int) -> list[tuple[str, bytes]]:
        """(subject, data) of every message of a stream after a sequence."""
        return asyncio.run(self._messages(stream, after_seq))

    def publish(self, subject: str, messages: Sequence[tuple[bytes, dict[str, str]]]) -> None:
        """Publish (data, headers) messages to JetStream and await each one's acknowledgement."""
        asyncio.run(self._publish(subject, messages))

    async def _last_seq(self, stream: str) -> int:
        nc = await nats.connect(self.nats_url(), allow_reconnect=False)
        try:
            info = await nc.jetstream().stream_info(stream)
            return int(info.state.last_seq)
        finally:
            await nc.close()

    async def _messages(self, stream: str, after_seq: int) -> list[tuple[str, bytes]]:
        nc = await nats.connect(self.nats_url(), allow_reconnect=False)
        try:
            js = nc.jetstream()
            last = (await js.stream_info(stream)).state.last_seq
            found = []
            for seq in range(after_seq + 1, last + 1):
                message = await js.get_msg(stream, seq)
                found.append((message.subject or "", message.data or b""))
            return found
        finally:
            await nc.close()

    async def _publish(self, subject: str, messages: Sequence[tuple[bytes, dict[str, str]]]) -> None:
        nc = await nats.connect(self.nats_url(), allow_reconnect=False)
        try:
            js = nc.jetstream()
            for data, headers in messages:
                await js.publish(subject, data, headers=headers)
        finally:
            await nc.close()

    def usage_waiting(self, dataplane: DataPlane) -> int | None:
        """Usage batches a data plane holds in memory or in its spool (None if it does not answer)."""
        return usage_waiting(dataplane.base_url)

    def usage_path_idle(self) -> bool:
        """Whether every batch of every data plane is in JetStream and spend-ingest acknowledged it."""
        return all(self.usage_waiting(dataplane) == 0 for dataplane in self.dataplanes) and (
            self.consumer_settled()
        )

    def reconciliation(self, node_id: str) -> Reconciliation:
        """What /spend/reconciliation shows for a node over the last hour, its minutes summed."""
        assert self.admin is not None
        response = self.admin.get("/spend/reconciliation", params={"node_id": node_id})
        assert response.status_code == 200, response.text
        nodes = [node for node in response.json()["nodes"] if node["node_id"] == node_id]
        if not nodes:
            return Reconciliation(0, 0, 0)
        (node,) = nodes
        return Reconciliation(node["emitted"], node["ingested"], node["missing"])

    def usage_stream_name(self) -> str:
        """The stream the data planes publish usage batches to."""
        return usage_stream_name(self.settings)

    def usage_subject(self) -> str:
        """The subject the data planes publish usage batches on."""
        return usage_subject(self.settings)

    def dead_letter_stream(self) -> str:
        """The stream undecodable usage messages are moved to."""
        return dead_letter_stream_name(self.settings)


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """A data plane's usage events: emitted by it, ingested into Postgres, and the difference."""

    emitted: int
    ingested: int
    missing: int

    def __sub__(self, earlier: Reconciliation) -> Reconciliation:
        return Reconciliation(
            self.emitted - earlier.emitted, self.ingested - earlier.ingested, self.missing - earlier.missing
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """What the client saw of one request."""

    index: int
    kind: Kind
    target: int
    """Index of the data plane it was sent to."""
    request_id: str | None
    """The x-request-id of the response; None when no response came."""
    status: int | None
    completed: bool
    """The body arrived whole (for a stream: up to [DONE])."""
    answered_at: float
    """time.monotonic() when the client was done with it."""


@dataclass
class LoadRun:
    """A known mix of requests sent from a thread of its own, alternating between data planes."""

    targets: Sequence[str]
    key: str
    groups: ModelGroups
    total: int
    concurrency: int = 24
    mix: Sequence[Kind] = MIX
    answers: list[Answer] = field(default_factory=list)
    _next: int = 0
    _done: threading.Condition = field(default_factory=threading.Condition)
    _sending: dict[int, int] = field(default_factory=dict)
    """Requests in flight per data plane."""
    _withheld: set[int] = field(default_factory=set)
    """Data planes no new request goes to (theirs go to the next one)."""
    _thread: threading.Thread | None = None
    _error: BaseException | None = None

    def start(self) -> LoadRun:
        """Begin sending."""
        self._thread = threading.Thread(target=self._run, name="usage-fault-load", daemon=True)
        self._thread.start()
        return self

    def wait_answered(self, count: int, timeout: float = 60.0) -> None:
        """Block until count requests are done (answered or failed)."""
        with self._done:
            if not self._done.wait_for(
                lambda: len(self.answers) >= count or self._error is not None, timeout
            ):
                raise AssertionError(f"only {len(self.answers)} of {count} requests done in {timeout}s")
        if self._error is not None:
            raise self._error

    def withhold(self, target: int, *, settle: bool = True, timeout: float = 30.0) -> int:
        """Send no new request to a data plane and (if settle) wait until none is in flight there;
        how many are in flight there now (from now on that number can only fall)."""
        with self._done:
            self._withheld.add(target)
            if settle and not self._done.wait_for(lambda: not self._sending.get(target), timeout):
                raise AssertionError(f"requests to data plane {target} still in flight after {timeout}s")
            return self._sending.get(target, 0)

    def join(self, timeout: float = 300.0) -> list[Answer]:
        """Wait until every request is done; the answers in the order they finished."""
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"load still running after {timeout}s"
        if self._error is not None:
            raise self._error
        return self.answers

    def _run(self) -> None:
        try:
            asyncio.run(self._send_all())
        except BaseException as exc:
            self._error = exc
            with self._done:
                self._done.notify_all()

    async def _send_all(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.concurrency * 2)
        timeout = aiohttp.ClientTimeout(total=30, connect=5)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await asyncio.gather(*(self._worker(session) for _ in range(self.concurrency)))

    async def _worker(self, session: aiohttp.ClientSession) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        while True:
            with self._done:
                index = self._next
                if index >= self.total:
                    return
                self._next += 1
                # Shifted every round of the mix, so each kind goes to every data plane.
                target = (index + index // len(self.mix)) % len(self.targets)
                while target in self._withheld:
                    target = (target + 1) % len(self.targets)
                self._sending[target] = self._sending.get(target, 0) + 1
            answer = await self._send(session, headers, index, target)
            with self._done:
                self._sending[target] -= 1
                self.answers.append(answer)
                self._done.notify_all()

    async def _send(
        self, session: aiohttp.ClientSession, headers: dict[str, str], index: int, target: int
    ) -> Answer:
        kind = self.mix[index % len(self.mix)]
        body: dict[str, Any] = {
            "model": self.groups.for_kind(kind),
            "messages": [{"role": "user", "content": f"request {index}"}],
        }
        if kind in (Kind.STREAM, Kind.ABORTED_STREAM, Kind.SLOW_STREAM):
            body["stream"] = True
        request_id: str | None = None
        status: int | None = None
        completed = False
        url = self.targets[target] + "/v1/chat/completions"
        try:
            async with session.post(url, json=body, headers=headers) as response:
                request_id = response.headers.get("x-request-id")
                status = response.status
                if kind is Kind.ABORTED_STREAM and status == 200:
                    await response.content.readany()
                    response.close()  # hang up: the connection is dropped, not returned to the pool
                else:
                    data = await response.read()
                    completed = not body.get("stream") or data.rstrip().endswith(b"data: [DONE]")
        except (aiohttp.ClientError, TimeoutError):
            pass
        return Answer(index, kind, target, request_id, status, completed, time.monotonic())


@dataclass(frozen=True, slots=True)
class SpendRow:
    """The columns of a spend_logs row the ledger checks."""

    request_id: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    spend: float
    node_id: str
    status: str
    http_status: int


class Ledger:
    """What spend-ingest wrote for one key, read straight from Postgres."""

    def __init__(self, faults: FaultStack, key: str) -> None:
        self._faults = faults
        self.key_hash = hash_key(key)

    def _query(self, sql: str, *params: object) -> list[tuple[Any, ...]] | None:
        """The rows of a query, or None while Postgres is unreachable."""
        try:
            with psycopg.connect(self._faults.database_url, autocommit=True, connect_timeout=2) as conn:
                return conn.execute(sql, params).fetchall()
        except psycopg.OperationalError:
            return None

    def rows(self) -> list[SpendRow] | None:
        """Every spend_logs row of the key (None while Postgres is unreachable)."""
        found = self._query(
            "SELECT request_id, prompt_tokens, completion_tokens, total_tokens, spend, node_id, "
            "status, http_status "
            "FROM spend_logs WHERE api_key = %s",
            self.key_hash,
        )
        return None if found is None else [SpendRow(*row) for row in found]

    def settled_rows(self, timeout: float = INGEST_TIMEOUT_SECONDS) -> list[SpendRow]:
        """The key's rows once every data plane has published all it holds and spend-ingest has
        written it (for a run that lost events, whose rows cannot all be waited for)."""

        def settled() -> list[SpendRow] | None:
            if not self._faults.usage_path_idle():
                return None
            return self.rows()

        rows: list[SpendRow] = wait_until(settled, timeout=timeout, interval=0.1)
        ids = [row.request_id for row in rows]
        assert len(ids) == len(set(ids)), "a request id was written twice"
        return rows

    def wait_for(self, request_ids: set[str], timeout: float = INGEST_TIMEOUT_SECONDS) -> list[SpendRow]:
        """The key's rows once there is one for each of request_ids and the usage path is idle; then
        none may be missing, doubled, or of a request not in request_ids."""

        def written() -> list[SpendRow] | None:
            rows = self.rows()
            if rows is None or len(rows) < len(request_ids) or not self._faults.usage_path_idle():
                return None
            return rows

        try:
            rows: list[SpendRow] = wait_until(written, timeout=timeout, interval=0.1)
        except AssertionError:
            rows = self.rows() or []
            missing = request_ids - {row.request_id for row in rows}
            raise AssertionError(
                f"{len(rows)} rows of {len(request_ids)} after {timeout}s; missing e.g. {sorted(missing)[:5]}"
            ) from None
        ids = [row.request_id for row in rows]
        assert len(ids) == len(set(ids)), "a request id was written twice"
        assert set(ids) == request_ids, (
            f"missing {sorted(request_ids - set(ids))[:5]}, unexpected {sorted(set(ids) - request_ids)[:5]}"
        )
        return rows

    def rollups(self) -> tuple[tuple[int, Decimal], tuple[int, Decimal]] | None:
        """(requests, spend) of the key summed over its spend_daily rows, and its spend_totals row."""
        daily = self._query(
            "SELECT coalesce(sum(requests), 0), coalesce(sum(spend), 0) FROM spend_daily "
            "WHERE kind = 'key' AND entity = %s",
            self.key_hash,
        )
        total = self._query(
            "SELECT coalesce(sum(requests), 0), coalesce(sum(spend), 0) FROM spend_totals "
            "WHERE kind = 'key' AND entity = %s",
            self.key_hash,
        )
        if daily is None or total is None:
            return None
        return (int(daily[0][0]), Decimal(daily[0][1])), (int(total[0][0]), Decimal(total[0][1]))


def check_rows(rows: Sequence[SpendRow], answers: Sequence[Answer]) -> None:
    """Each row carries the usage and cost its request's kind gets from the fake, and the status
    its client saw (an aborted stream's client saw no end)."""
    seen = {answer.request_id: answer for answer in answers if answer.request_id is not None}
    billed = (FAKE_USAGE["prompt_tokens"], FAKE_USAGE["completion_tokens"], FAKE_USAGE["total_tokens"])
    for row in rows:
        answer = seen.get(row.request_id)
        tokens = (row.prompt_tokens, row.completion_tokens, row.total_tokens)
        if answer is None:
            continue  # a request whose answer never reached the client (its process was killed)
        kind = answer.kind
        if kind is not Kind.ABORTED_STREAM:
            status = "success" if answer.status == 200 else "failure"
            assert (row.status, row.http_status) == (status, answer.status), (kind, row)
        if kind.billed:
            assert tokens == billed, (kind, row)
            assert abs(row.spend - BILLED_COST) <= SPEND_TOLERANCE, (kind, row)
        else:
            assert tokens == (0, 0, 0) and row.spend == 0, (kind, row)


def check_rollups(ledger: Ledger, rows: Sequence[SpendRow]) -> None:
    """spend_daily (kind 'key') and spend_totals of the key count each row once and sum its spend."""
    expected_spend = sum(row.spend for row in rows)

    def matching() -> tuple[tuple[int, Decimal], tuple[int, Decimal]] | None:
        found = ledger.rollups()
        if found is None:
            return None
        (daily_requests, _), (total_requests, _) = found
        return found if daily_requests >= len(rows) and total_requests >= len(rows) else None

    try:
        (daily_requests, daily_spend), (total_requests, total_spend) = wait_until(
            matching, timeout=10, interval=0.1
        )
    except AssertionError:
        raise AssertionError(f"rollups of {len(rows)} rows: {ledger.rollups()}") from None
    assert daily_requests == len(rows), (daily_requests, len(rows))
    assert total_requests == len(rows), (total_requests, len(rows))
    assert abs(float(daily_spend) - expected_spend) <= SPEND_TOLERANCE, (daily_spend, expected_spend)
    assert abs(float(total_spend) - expected_spend) <= SPEND_TOLERANCE, (total_spend, expected_spend)


def answered_ids(answers: Sequence[Answer]) -> set[str]:
    """The request ids of every request that got a response (a cut or aborted stream included)."""
    return {answer.request_id for answer in answers if answer.request_id is not None}
