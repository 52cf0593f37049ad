"""A stack of several data planes sharing limits, and the bursts that show whether the limits hold.

`ClusterStack` runs the control plane, spend-ingest and N data planes against a NATS server of its
own (so a test may kill it and start it again on the same port), with a fake OpenAI upstream that
counts the calls it holds at once. `burst` and `flood` send traffic round-robin across the data
planes from many concurrent clients and record what each request got back.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import nats
import orjson
from aiohttp import web

from hydite_common.devstack import ServiceProcess, Stack, StackConfig, free_port
from hydite_common.embedded import ensure_nats
from hydite_common.settings import BaseServiceSettings
from tests.fakes.openai_server import FAKE_USAGE, FakeOpenAI, FakeServerThread
from tests.harness import FAKE_UPSTREAM_KEY, consumer_settled, unique, usage_waiting, wait_until

HOLD_SECONDS = 0.3
"""How long the fake holds a call to its `slow` model."""
GOSSIP_INTERVAL_MS = 100
USAGE_FLUSH_MS = 50
INPUT_PRICE_PER_TOKEN = 1e-6
OUTPUT_PRICE_PER_TOKEN = 1e-3
"""A priced deployment's prices: the output dominates, so a call's worst-case reservation (its
prompt estimated from its size, its output by max_tokens) is within 1% of what it costs."""
CALL_TOKENS = FAKE_USAGE["prompt_tokens"] + FAKE_USAGE["completion_tokens"]
CALL_COST = (
    FAKE_USAGE["prompt_tokens"] * INPUT_PRICE_PER_TOKEN
    + FAKE_USAGE["completion_tokens"] * OUTPUT_PRICE_PER_TOKEN
)
"""What one call of a priced deployment costs: the fake answers every call with the same usage."""
MAX_TOKENS = FAKE_USAGE["completion_tokens"]
"""Every request asks for the output the fake gives."""
CLUSTER_TIMEOUT_SECONDS = 20.0
INGEST_TIMEOUT_SECONDS = 30.0


class InFlightCounter:
    """Counts the chat calls the fake upstream holds at once, and the most it ever held."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget the peak (between scenarios)."""
        with self._lock:
            self.peak = self.now

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Count the request while its handler runs."""
        if not request.path.endswith("/chat/completions"):
            return await handler(request)
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            return await handler(request)
        finally:
            with self._lock:
                self.now -= 1


@dataclass
class DataPlane:
    """One data plane of the cluster: where it listens and its node id."""

    port: int
    node_id: str
    service: ServiceProcess | None = None

    @property
    def base_url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    def readiness(self) -> dict[str, Any]:
        """Its /health/readiness JSON, whatever the status (a data plane without NATS may say 503)."""
        response = httpx.get(self.base_url + "/health/readiness", timeout=2)
        body: dict[str, Any] = response.json()
        return body

    def gossip_counts(self) -> dict[str, float]:
        """Its limit reports sent, received and dropped as malformed (from /metrics), for failures."""
        try:
            text = httpx.get(self.base_url + "/metrics", timeout=2).text
        except httpx.HTTPError:
            return {}
        counts = {}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name.startswith("hydite_limits_reports_"):
                counts[name.removeprefix("hydite_limits_")] = float(value)
        return counts

    def limits_view(self) -> dict[str, Any] | None:
        """The `limits` part of its readiness, or None when it does not answer or has none."""
        try:
            view = self.readiness().get("limits")
        except (httpx.HTTPError, ValueError):
            return None
        return view if isinstance(view, dict) else None


class ClusterStack:
    """Control plane, spend-ingest and several data planes on a NATS server this stack alone owns."""

    def __init__(self, data_dir: Path, dataplanes: int = 3, **dataplane_env: str) -> None:
        config = StackConfig.ephemeral(data_dir)
        # A free port: nothing answers there, so ensure_nats starts a server this stack may kill.
        config.nats_url = f"nats://127.0.0.1:{free_port()}"
        config.extra_env = {
            "HYDITE_USAGE_FLUSH_MS": str(USAGE_FLUSH_MS),
            "HYDITE_CONSUMER_ACK_WAIT_SECONDS": "2",
            "HYDITE_LIMITS_GOSSIP_INTERVAL_MS": str(GOSSIP_INTERVAL_MS),
            **dataplane_env,
        }
        self.stack = Stack(config)
        self.settings = BaseServiceSettings(nats_prefix=config.nats_prefix, nats_url=config.nats_url)
        name = unique("cluster")
        self.dataplanes = [
            DataPlane(config.dataplane_port if index == 0 else free_port(), f"{name}-{index}")
            for index in range(dataplanes)
        ]
        self.fake = FakeOpenAI(api_key=FAKE_UPSTREAM_KEY, slow_seconds=HOLD_SECONDS)
        self.in_flight = InFlightCounter()
        app = self.fake.app()
        app.middlewares.append(self.in_flight.middleware)
        self._fake_server = FakeServerThread(app)
        self.fake_base = ""
        self.admin: httpx.Client | None = None

    def start(self) -> None:
        """Start the fake, NATS, the control plane, spend-ingest and every data plane; then wait
        until each data plane counts all of them as members and hears all its peers."""
        self.fake_base = self._fake_server.start() + "/v1"
        stack = self.stack
        stack.check_ports()
        stack.start_dependencies()
        assert stack.nats is not None and stack.nats.embedded, "the cluster needs a NATS server of its own"
        stack.start_controlplane()
        stack.start_spend_ingest()
        for dataplane in self.dataplanes:
            dataplane.service = stack.start_dataplane(dataplane.port, dataplane.node_id)
        self.admin = httpx.Client(
            base_url=stack.admin_url,
            headers={"Authorization": f"Bearer {stack.config.master_key}"},
            timeout=10,
        )
        self.wait_mode("cluster")

    def remove(self) -> None:
        """Stop every process and drop what they stored (the fake last)."""
        try:
            if self.admin is not None:
                self.admin.close()
            self.stack.remove()
        finally:
            self._fake_server.stop()

    @property
    def targets(self) -> list[str]:
        """The data planes' base URLs, in node order."""
        return [dataplane.base_url for dataplane in self.dataplanes]

    @property
    def node_ids(self) -> list[str]:
        """The data planes' node ids, sorted as readiness lists them."""
        return sorted(dataplane.node_id for dataplane in self.dataplanes)

    # Membership

    def in_mode(self, mode: str) -> bool:
        """Whether every data plane is in this mode; in "cluster" also listing every node as a member,
        hearing every peer and connected to NATS."""
        everyone = self.node_ids
        for dataplane in self.dataplanes:
            view = dataplane.limits_view()
            if view is None or view.get("mode") != mode:
                return False
            if mode == "cluster" and not (
                view.get("members") == everyone
                and set(everyone) - {dataplane.node_id} <= set(view.get("peers_heard") or ())
                and view.get("nats") is True
            ):
                return False
        return True

    def wait_mode(self, mode: str, timeout: float = CLUSTER_TIMEOUT_SECONDS) -> None:
        """Until every data plane is in this mode (see in_mode); fail with what they say."""
        try:
            wait_until(lambda: self.in_mode(mode), timeout=timeout, interval=0.05)
        except AssertionError:
            views = {
                dataplane.node_id: {**(dataplane.limits_view() or {}), **dataplane.gossip_counts()}
                for dataplane in self.dataplanes
            }
            raise AssertionError(f"not all in mode {mode!r} after {timeout}s: {views}") from None

    # NATS

    def kill_nats(self) -> None:
        """SIGKILL the stack's NATS server and reap it."""
        running = self.stack.nats
        assert running is not None and running._process is not None, "not a server this stack started"
        running._process.send_signal(signal.SIGKILL)
        running.wait_stopped(time.monotonic() + 10)

    def start_nats(self) -> None:
        """Start NATS again on the same port and store."""
        config = self.stack.config
        before = self.stack.nats.url if self.stack.nats is not None else None
        self.stack.nats = ensure_nats(config.nats_url, config.data_dir.resolve())
        assert self.stack.nats.embedded and self.stack.nats.url == before, self.stack.nats

    # Admin

    def admin_post(self, path: str, body: dict[str, Any]) -> Any:
        """An admin POST that must succeed; its JSON."""
        assert self.admin is not None
        response = self.admin.post(path, json=body)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        return response.json()

    def deploy(self, upstream: str = "gpt-4o-mini", *, priced: bool = True) -> str:
        """A model group of one deployment of the fake's `upstream`; priced (INPUT_ and
        OUTPUT_PRICE_PER_TOKEN), or with no price at all (`slow` is a model no price table knows)."""
        name = unique(f"cluster-{upstream}")
        prices = {
            "input_cost_per_token": INPUT_PRICE_PER_TOKEN,
            "output_cost_per_token": OUTPUT_PRICE_PER_TOKEN,
        }
        self.admin_post(
            "/model/new",
            {
                "model_name": name,
                "litellm_params": {
                    "model": f"openai/{upstream}",
                    "api_base": self.fake_base,
                    "api_key": FAKE_UPSTREAM_KEY,
                    **(prices if priced else {}),
                },
                "model_info": {"id": unique(name)},
            },
        )
        return name

    def new_key(self, **fields: Any) -> str:
        """A key of its own for one scenario, with these /key/generate fields."""
        return str(self.admin_post("/key/generate", {"key_alias": unique("cluster"), **fields})["key"])

    def spend_rows(self, key: str) -> list[dict[str, Any]]:
        """The key's /spend/logs rows."""
        assert self.admin is not None
        response = self.admin.get("/spend/logs", params={"api_key": key})
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()
        return rows

    def spend_of(self, key: str) -> float:
        """The key's spend summed over its /spend/logs rows."""
        return float(sum(row["spend"] or 0 for row in self.spend_rows(key)))

    # The usage path

    def usage_waiting(self, dataplane: DataPlane) -> int | None:
        """Usage batches a data plane holds in memory or in its spool (None if it does not answer)."""
        return usage_waiting(dataplane.base_url)

    def consumer_settled(self) -> bool:
        """Whether spend-ingest has taken and acknowledged every message of the usage stream."""
        assert self.stack.nats is not None
        return consumer_settled(self.stack.nats.url, self.settings)

    def wait_ingested(self, key: str, answered: int, timeout: float = INGEST_TIMEOUT_SECONDS) -> None:
        """Until the key has a success row for each of its `answered` calls, every data plane has
        published all its usage and spend-ingest acknowledged it: its watermark of each data plane
        then covers every request sent so far."""

        def ingested() -> bool:
            successes = [row for row in self.spend_rows(key) if row["status"] == "success"]
            return len(successes) >= answered and self.usage_path_idle()

        wait_until(ingested, timeout=timeout, interval=0.05)

    def usage_path_idle(self) -> bool:
        """Whether every data plane's usage is in JetStream and spend-ingest acknowledged all of it."""
        return all(self.usage_waiting(dp) == 0 for dp in self.dataplanes) and self.consumer_settled()


class AlertListener:
    """Collects the messages on a NATS subject from a thread of its own while a test runs."""

    def __init__(self, nats_url: str, subject: str) -> None:
        self._nats_url = nats_url
        self._subject = subject
        self.messages: list[bytes] = []
        self._subscribed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._listen()), daemon=True)

    def __enter__(self) -> AlertListener:
        self._thread.start()
        assert self._subscribed.wait(10), f"could not subscribe to {self._subject}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    async def _listen(self) -> None:
        nc = await nats.connect(self._nats_url)
        try:

            async def collect(message: Any) -> None:
                self.messages.append(bytes(message.data))

            await nc.subscribe(self._subject, cb=collect)
            await nc.flush()
            self._subscribed.set()
            while not self._stop.is_set():
                await asyncio.sleep(0.02)
        finally:
            await nc.close()


@dataclass(frozen=True, slots=True)
class Answer:
    """What one request got back."""

    target: int
    """Index of the data plane it was sent to."""
    status: int
    error_type: str | None
    error_code: str | None
    message: str
    headers: dict[str, str]

    @property
    def admitted(self) -> bool:
        """Whether the gateway let it through (the upstream answered)."""
        return self.status == 200


def chat_body(model: str, index: int) -> dict[str, Any]:
    """A chat request whose output cap is what the fake answers with."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": f"hi {index}"}],
        "max_tokens": MAX_TOKENS,
    }


async def _send(
    session: aiohttp.ClientSession, url: str, key: str, body: dict[str, Any], target: int
) -> Answer:
    async with session.post(url, json=body, headers={"Authorization": f"Bearer {key}"}) as response:
        data = await response.read()
        error: dict[str, Any] = {}
        if response.status != 200:
            try:
                error = orjson.loads(data).get("error") or {}
            except (orjson.JSONDecodeError, AttributeError):
                error = {"message": data.decode(errors="replace")}
        return Answer(
            target,
            response.status,
            error.get("type"),
            error.get("code"),
            str(error.get("message", "")),
            {name.lower(): value for name, value in response.headers.items()},
        )


def burst(
    targets: Sequence[str],
    key: str,
    model: str,
    total: int,
    *,
    concurrency: int = 16,
    spread: Sequence[int] | None = None,
) -> list[Answer]:
    """Send total chat requests from `concurrency` clients, request i to targets[spread[i % len]]
    (round-robin over every target by default); every answer, in sending order."""
    order = list(spread) if spread is not None else list(range(len(targets)))
    return asyncio.run(_burst(targets, key, model, total, concurrency, order))


async def _burst(
    targets: Sequence[str], key: str, model: str, total: int, concurrency: int, order: list[int]
) -> list[Answer]:
    answers: list[Answer | None] = [None] * total
    next_index = iter(range(total))
    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def client() -> None:
            for index in next_index:
                target = order[index % len(order)]
                url = targets[target] + "/v1/chat/completions"
                answers[index] = await _send(session, url, key, chat_body(model, index), target)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return [answer for answer in answers if answer is not None]


@dataclass
class Flood:
    """Clients that send requests back to back, round-robin over the data planes, for a while."""

    targets: Sequence[str]
    key: str
    model: str
    clients: int
    seconds: float
    answers: list[Answer] = field(default_factory=list)

    def run(self) -> list[Answer]:
        """Send until `seconds` have passed; every answer."""
        asyncio.run(self._run())
        return self.answers

    async def _run(self) -> None:
        deadline = time.monotonic() + self.seconds
        connector = aiohttp.TCPConnector(limit=self.clients * 2)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=30)
        ) as session:

            async def client(offset: int) -> None:
                index = offset
                while time.monotonic() < deadline:
                    target = index % len(self.targets)
                    url = self.targets[target] + "/v1/chat/completions"
                    answer = await _send(session, url, self.key, chat_body(self.model, index), target)
                    self.answers.append(answer)
                    index += 1
                    if not answer.admitted:
                        # A refused client waits a little, as a polite one would, instead of spinning.
                        await asyncio.sleep(0.02)

            await asyncio.gather(*(client(offset) for offset in range(self.clients)))
