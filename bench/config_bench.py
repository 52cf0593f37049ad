"""Config distribution benchmark: a 100k-key snapshot and admin-write propagation to 3 data planes.

`python -m bench.config_bench` runs the full benchmark and rewrites its section of
bench/RESULTS.md; `--smoke` runs a tiny version (1,000 keys, 20 writes) and writes
nothing. Every process runs on 127.0.0.1 in its own database and NATS prefix, and
all of them are stopped and the namespace dropped afterwards, even on failure.
Targets are printed as PASS/MISS, never asserted: benchmarks are not tests.
"""

from __future__ import annotations

import argparse
import base64
import functools
import gc
import http.client
import importlib.metadata
import math
import os
import platform
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql

from bench.reporting import (
    cpu_model,
    exit_on_sigterm,
    figures_markdown,
    memory_of,
    percentile,
    print_figures,
    verdict,
    write_section,
)
from hydite.config.v1 import config_pb2 as pb
from hydite_common import config_types as types
from hydite_common.credentials import CredentialCipher
from hydite_common.devstack import ServiceProcess, Stack, StackConfig, free_port
from hydite_common.keys import hash_key, mask_key
from hydite_common.settings import to_libpq_url, with_database_name
from hydite_controlplane.config.builder import RESOURCE_TABLES, to_resource
from hydite_controlplane.models.keys import VirtualKeyRow
from hydite_dataplane.config.decode import snapshot_from_resources

SECTION_TITLE = "## Config distribution (`bench/config_bench.py`)"
SEED = 20_240_601
DATA_PLANES = 3
POLL_SECONDS = 0.002
WRITE_TIMEOUT_SECONDS = 10.0
SYNC_TIMEOUT_SECONDS = 60.0

TARGET_APPLY_SECONDS = 2.0
TARGET_DATAPLANE_RSS_MB = 200.0
TARGET_PROPAGATION_P99_MS = 200.0

MODELS = (
    "gpt-4o",
    "gpt-4o-mini",
    "o3-mini",
    "claude-3-5-sonnet",
    "claude-3-5-haiku",
    "gemini-2.0-flash",
    "deepseek-chat",
    "qwen-max",
    "mistral-large",
)
KEY_COLUMNS = (
    "token",
    "key_name",
    "key_alias",
    "user_id",
    "team_id",
    "organization_id",
    "customer_id",
    "key_group",
    "models",
    "tags",
    "allowed_routes",
    "guardrails",
    "blocked",
    "expires",
    "max_budget",
    "soft_budget",
    "budget_duration",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "model_rpm_limit",
    "model_tpm_limit",
    "metadata",
    "created_at",
    "updated_at",
    "created_by",
)
JSON_COLUMNS = frozenset(
    {"models", "tags", "allowed_routes", "guardrails", "model_rpm_limit", "model_tpm_limit", "metadata"}
)


@dataclass(frozen=True)
class Options:
    """What to run: sizes, and whether to write RESULTS.md."""

    keys: int
    writes: int
    apply_runs: int
    smoke: bool
    write_results: bool


@dataclass
class Figures:
    """Everything measured in one run (seconds, bytes), filled in as the phases complete."""

    keys: int = 0
    writes: int = 0
    build_seconds: float = 0.0
    wire_bytes: int = 0
    apply_seconds: list[float] = field(default_factory=list)
    copy_seconds: float = 0.0
    controlplane_first_start_seconds: float = 0.0
    controlplane_start_seconds: float = 0.0
    dataplane_start_seconds: list[float] = field(default_factory=list)
    dataplane_rss_bytes: int = 0
    dataplane_peak_rss_bytes: int = 0
    controlplane_rss_bytes: int = 0
    controlplane_peak_rss_bytes: int = 0
    write_seconds: list[float] = field(default_factory=list)
    propagation_seconds: list[float] = field(default_factory=list)
    propagation_after_reply_seconds: list[float] = field(default_factory=list)
    timeouts: int = 0
    waited_write_seconds: list[float] = field(default_factory=list)
    unwaited_write_seconds: list[float] = field(default_factory=list)
    applied_everywhere: int = 0


# ---------------------------------------------------------------- key rows


def key_fields(index: int, rng: random.Random, now: datetime) -> dict[str, Any]:
    """Column values of one realistic virtual key (JSON columns as Python values)."""
    key = "sk-hydite-" + base64.urlsafe_b64encode(rng.randbytes(24)).decode()
    models = rng.sample(MODELS, rng.randint(1, 4))
    team = index % 500
    max_budget = float(50 + index % 950)
    return {
        "token": hash_key(key),
        "key_name": mask_key(key),
        "key_alias": f"bench-key-{index:06d}",
        "user_id": f"user-{index % 20_000:05d}",
        "team_id": f"team-{team:03d}",
        "organization_id": f"org-{team % 40:02d}",
        "customer_id": None if index % 3 else f"customer-{index % 7_000:04d}",
        "key_group": None if index % 4 else f"group-{index % 10}",
        "models": models,
        "tags": ["bench", ("env:prod", "env:staging", "env:dev")[index % 3], f"team:{team}"],
        "allowed_routes": [] if index % 5 else ["/v1/chat/completions", "/v1/embeddings"],
        "guardrails": [] if index % 10 else ["pii-mask"],
        "blocked": index % 97 == 0,
        "expires": None if index % 2 else now + timedelta(days=30 + index % 365),
        "max_budget": max_budget,
        "soft_budget": None if index % 2 else max_budget * 0.8,
        "budget_duration": ("1d", "7d", "30d")[index % 3],
        "rpm_limit": 60 + index % 1000,
        "tpm_limit": 100_000 + 1000 * (index % 500),
        "max_parallel_requests": None if index % 4 else 10,
        "model_rpm_limit": {models[0]: 30},
        "model_tpm_limit": {models[0]: 50_000} if index % 2 else {},
        "metadata": {
            "owner": f"user-{index % 20_000:05d}@example.com",
            "cost_center": f"cc-{index % 120:03d}",
            "purpose": "benchmark",
            "ticket": f"OPS-{10_000 + index}",
        },
        "created_at": now,
        "updated_at": now,
        "created_by": "bench",
    }


def key_row(fields: dict[str, Any]) -> VirtualKeyRow:
    """The ORM row of a key's column values (as the control plane loads it)."""
    kwargs = {("metadata_" if name == "metadata" else name): value for name, value in fields.items()}
    return VirtualKeyRow(**kwargs)


def database_url(stack: Stack, name: str) -> str:
    """A libpq URL of one database on the stack's Postgres server."""
    assert stack.postgres is not None
    return with_database_name(to_libpq_url(stack.postgres.url), name)


def copy_keys(stack: Stack, count: int) -> float:
    """COPY count keys into the migrated database plus one change-log row (head 1); returns seconds."""
    rng = random.Random(SEED)
    now = datetime.now(UTC)
    statement = sql.SQL("COPY virtual_keys ({}) FROM STDIN").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in KEY_COLUMNS)
    )
    started = time.perf_counter()
    last_token = ""
    with psycopg.connect(database_url(stack, stack.config.database_name)) as conn:
        with conn.cursor() as cursor:
            with cursor.copy(statement) as copy:
                for index in range(count):
                    fields = key_fields(index, rng, now)
                    copy.write_row(
                        [
                            orjson.dumps(fields[c]).decode() if c in JSON_COLUMNS else fields[c]
                            for c in KEY_COLUMNS
                        ]
                    )
                    last_token = fields["token"]
            cursor.execute(
                "INSERT INTO config_changes (version, type_url, name, op, committed_at)"
                " VALUES (1, %s, %s, 'upsert', now())",
                (types.VIRTUAL_KEY, last_token),
            )
        conn.commit()
    return time.perf_counter() - started


# ---------------------------------------------------------------- in-process build and apply


def measure_apply(options: Options, salt_key: str, figures: Figures) -> None:
    """Build count key resources with the control plane's builder, then time the data plane's decode."""
    rng = random.Random(SEED)
    now = datetime.now(UTC)
    rows = [key_row(key_fields(i, rng, now)) for i in range(options.keys)]
    table = RESOURCE_TABLES[types.VIRTUAL_KEY]
    started = time.perf_counter()
    built = [to_resource(table, row) for row in rows]
    figures.build_seconds = time.perf_counter() - started
    del rows
    # What the data plane holds at snapshot end: resources parsed from the wire.
    wire = pb.SnapshotChunk(version=1, nonce="1", index=0, resources=built).SerializeToString()
    del built
    figures.wire_bytes = len(wire)
    resources = list(pb.SnapshotChunk.FromString(wire).resources)
    cipher = CredentialCipher(salt_key)
    for _ in range(options.apply_runs):
        gc.collect()
        started = time.perf_counter()
        snapshot = snapshot_from_resources(1, resources, cipher)
        figures.apply_seconds.append(time.perf_counter() - started)
        if len(snapshot.keys) != options.keys:
            raise RuntimeError(f"decoded {len(snapshot.keys)} keys, expected {options.keys}")
        del snapshot


# ---------------------------------------------------------------- processes


def timed_start(start: Callable[[], ServiceProcess]) -> tuple[ServiceProcess, float]:
    """Call a Stack start method; the service and seconds from process start to readiness 200."""
    started = time.perf_counter()
    service = start()
    return service, time.perf_counter() - started


class AdminClient:
    """One keep-alive HTTP/1.1 connection to the control plane's admin port, as master."""

    def __init__(self, port: int, master_key: str) -> None:
        self._port = port
        self._headers = {"Authorization": f"Bearer {master_key}", "Content-Type": "application/json"}
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def call(self, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        """Send one request (reconnecting once if the connection was closed); (status, JSON)."""
        status, payload, _ = self.call_with_headers(method, path, body)
        return status, payload

    def call_with_headers(
        self, method: str, path: str, body: object | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        """As `call`, with the response headers (lower-cased names)."""
        payload = orjson.dumps(body) if body is not None else None
        for attempt in range(2):
            try:
                self._conn.request(method, path, body=payload, headers=self._headers)
                response = self._conn.getresponse()
                data = response.read()
                headers = {k.lower(): v for k, v in response.getheaders()}
                return response.status, orjson.loads(data) if data else None, headers
            except (http.client.HTTPException, ConnectionError):
                self._conn.close()
                self._conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=10)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def acked_versions(self) -> dict[str, int]:
        """GET /config/status: each node's acked version."""
        status, payload = self.call("GET", "/config/status")
        if status != 200:
            raise RuntimeError(f"/config/status answered {status}: {payload!r}")
        return {n["node_id"]: int(n["acked_version"]) for n in payload["nodes"] if n["connected"]}

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def wait_acked(client: AdminClient, nodes: Sequence[str], version: int, timeout: float) -> float | None:
    """Poll /config/status until every node acked version; perf_counter() then, or None on timeout."""
    deadline = time.perf_counter() + timeout
    while True:
        acked = client.acked_versions()
        now = time.perf_counter()
        if all(acked.get(node, -1) >= version for node in nodes):
            return now
        if now > deadline:
            return None
        time.sleep(POLL_SECONDS)


def measure_propagation(
    stack: Stack, client: AdminClient, nodes: Sequence[str], options: Options, figures: Figures
) -> None:
    """Sequential POST /key/generate; per write, the time until every node acked its version."""
    with psycopg.connect(database_url(stack, stack.config.database_name), autocommit=True) as conn:
        head_row = conn.execute("SELECT coalesce(max(version), 0) FROM config_changes").fetchone()
        head = int(head_row[0]) if head_row else 0
        if wait_acked(client, nodes, head, SYNC_TIMEOUT_SECONDS) is None:
            raise RuntimeError(f"data planes never all acked version {head}: {client.acked_versions()}")
        for _ in range(options.writes):
            sent = time.perf_counter()
            status, payload = client.call("POST", "/key/generate", {})
            replied = time.perf_counter()
            if status != 200:
                raise RuntimeError(f"/key/generate answered {status}: {payload!r}")
            row = conn.execute(
                "SELECT max(version) FROM config_changes WHERE name = %s", (payload["token_id"],)
            ).fetchone()
            if row is None or row[0] is None:
                raise RuntimeError("the write left no config_changes row")
            acked = wait_acked(client, nodes, int(row[0]), WRITE_TIMEOUT_SECONDS)
            figures.write_seconds.append(replied - sent)
            if acked is None:
                figures.timeouts += 1
                continue
            figures.propagation_seconds.append(acked - sent)
            figures.propagation_after_reply_seconds.append(acked - replied)


def measure_ack_wait(stack: Stack, options: Options, figures: Figures) -> None:
    """What read-your-writes costs a write: POST /key/generate through the replica that waits for
    every data plane's ACK, interleaved with the same write through a second replica (same
    database) that does not wait (HYDITE_CONFIG_APPLY_TIMEOUT_SECONDS=0)."""
    port = free_port()
    stack.spawn(
        f"controlplane-{port}",
        "hydite_controlplane",
        port,
        HYDITE_ADMIN_PORT=str(port),
        HYDITE_GRPC_PORT=str(free_port()),
        HYDITE_CONFIG_APPLY_TIMEOUT_SECONDS="0",
    )
    waiting = AdminClient(stack.config.admin_port, stack.config.master_key)
    unwaiting = AdminClient(port, stack.config.master_key)
    try:
        for _ in range(options.writes):
            for client, samples in (
                (waiting, figures.waited_write_seconds),
                (unwaiting, figures.unwaited_write_seconds),
            ):
                sent = time.perf_counter()
                status, payload, headers = client.call_with_headers("POST", "/key/generate", {})
                samples.append(time.perf_counter() - sent)
                if status != 200:
                    raise RuntimeError(f"/key/generate answered {status}: {payload!r}")
                if (
                    client is waiting
                    and headers.get("x-hydite-config-applied") == f"{DATA_PLANES}/{DATA_PLANES}"
                ):
                    figures.applied_everywhere += 1
    finally:
        waiting.close()
        unwaiting.close()


def run_stack(stack: Stack, options: Options, figures: Figures) -> None:
    """Phases 1 and 2 against real processes: snapshot at N keys, then propagation to 3 nodes."""
    stack.start_dependencies()
    controlplane, figures.controlplane_first_start_seconds = timed_start(stack.start_controlplane)
    controlplane.stop()
    stack.services.remove(controlplane)
    print(f"  control plane migrated the database in {figures.controlplane_first_start_seconds:.2f} s")

    figures.copy_seconds = copy_keys(stack, options.keys)
    print(f"  copied {options.keys:,} keys in {figures.copy_seconds:.2f} s")

    controlplane, figures.controlplane_start_seconds = timed_start(stack.start_controlplane)
    print(f"  control plane ready with {options.keys:,} keys in {figures.controlplane_start_seconds:.2f} s")

    nodes = [f"bench-dataplane-{i + 1}" for i in range(DATA_PLANES)]
    dataplane, seconds = timed_start(functools.partial(stack.start_dataplane, free_port(), nodes[0]))
    figures.dataplane_start_seconds.append(seconds)
    figures.dataplane_rss_bytes, figures.dataplane_peak_rss_bytes = memory_of(dataplane.process.pid)
    figures.controlplane_rss_bytes, figures.controlplane_peak_rss_bytes = memory_of(controlplane.process.pid)
    print(
        f"  data plane ready in {seconds:.2f} s, RSS {figures.dataplane_rss_bytes / 1e6:.0f} MB"
        f" (peak {figures.dataplane_peak_rss_bytes / 1e6:.0f} MB)"
    )

    for node in nodes[1:]:
        _, seconds = timed_start(functools.partial(stack.start_dataplane, free_port(), node))
        figures.dataplane_start_seconds.append(seconds)
    print(f"  {DATA_PLANES} data planes connected; {options.writes} admin writes…")

    client = AdminClient(stack.config.admin_port, stack.config.master_key)
    try:
        measure_propagation(stack, client, nodes, options, figures)
    finally:
        client.close()
    print(f"  {options.writes} writes each with and without waiting for ACKs…")
    measure_ack_wait(stack, options, figures)


def log_tails(stack: Stack) -> str:
    """The end of every service's log, for a failure report."""
    return "\n".join(f"--- {s.name}\n{s.log_tail()[-3000:]}" for s in stack.services)


# ---------------------------------------------------------------- report


def mb(size: int) -> str:
    """Bytes as decimal megabytes."""
    return f"{size / 1e6:.0f} MB"


def figure_rows(figures: Figures) -> list[tuple[str, str, str, str]]:
    """(measure, value, target, PASS/MISS) rows of the results table."""
    apply_median = statistics.median(figures.apply_seconds)
    rss_mb = figures.dataplane_rss_bytes / 1e6
    ms = [s * 1000 for s in figures.propagation_seconds]
    after_reply_ms = [s * 1000 for s in figures.propagation_after_reply_seconds]
    write_ms = [s * 1000 for s in figures.write_seconds]
    waited_ms = [s * 1000 for s in figures.waited_write_seconds]
    unwaited_ms = [s * 1000 for s in figures.unwaited_write_seconds]
    p99 = percentile(ms, 0.99) if not figures.timeouts else math.inf
    n = f"{figures.keys:,}"
    starts = ", ".join(f"{s:.2f}" for s in figures.dataplane_start_seconds)
    return [
        (f"Snapshot build in-process ({n} key resources, builder)", f"{figures.build_seconds:.2f} s", "", ""),
        ("Snapshot size on the wire", f"{figures.wire_bytes / 1e6:.1f} MB", "", ""),
        (
            f"Snapshot apply in-process (`snapshot_from_resources`, median of {len(figures.apply_seconds)})",
            f"{apply_median:.2f} s",
            f"≤ {TARGET_APPLY_SECONDS:.0f} s",
            verdict(apply_median <= TARGET_APPLY_SECONDS),
        ),
        (f"Bulk COPY of {n} keys", f"{figures.copy_seconds:.2f} s", "", ""),
        (
            "Control plane start-to-ready, empty database (migrates)",
            f"{figures.controlplane_first_start_seconds:.2f} s",
            "",
            "",
        ),
        (
            f"Control plane start-to-ready at {n} keys (load + build)",
            f"{figures.controlplane_start_seconds:.2f} s",
            "",
            "",
        ),
        (
            f"Data plane start-to-ready at {n} keys (build + send + apply)",
            f"{figures.dataplane_start_seconds[0]:.2f} s (nodes 1–3: {starts})",
            "",
            "",
        ),
        (
            "Data plane RSS after the snapshot is applied",
            f"{mb(figures.dataplane_rss_bytes)} (peak {mb(figures.dataplane_peak_rss_bytes)})",
            f"≤ {TARGET_DATAPLANE_RSS_MB:.0f} MB",
            verdict(rss_mb <= TARGET_DATAPLANE_RSS_MB),
        ),
        (
            "Control plane RSS after sending the snapshot",
            f"{mb(figures.controlplane_rss_bytes)} (peak {mb(figures.controlplane_peak_rss_bytes)})",
            "",
            "",
        ),
        (
            f"Propagation, write sent → {DATA_PLANES} nodes acked ({figures.writes} writes), p50 / p90",
            f"{percentile(ms, 0.5):.1f} / {percentile(ms, 0.9):.1f} ms",
            "",
            "",
        ),
        (
            "Propagation p99 / max",
            f"{percentile(ms, 0.99):.1f} / {max(ms, default=math.nan):.1f} ms"
            + (
                f" ({figures.timeouts} writes never acked within {WRITE_TIMEOUT_SECONDS:.0f} s)"
                if figures.timeouts
                else ""
            ),
            f"p99 ≤ {TARGET_PROPAGATION_P99_MS:.0f} ms",
            verdict(p99 <= TARGET_PROPAGATION_P99_MS),
        ),
        (
            "Propagation after the write's reply → all acked, p50 / p99",
            f"{percentile(after_reply_ms, 0.5):.1f} / {percentile(after_reply_ms, 0.99):.1f} ms",
            "",
            "",
        ),
        (
            "Admin write latency (POST /key/generate, answered once every node applied it), p50 / p99",
            f"{percentile(write_ms, 0.5):.1f} / {percentile(write_ms, 0.99):.1f} ms",
            "",
            "",
        ),
        (
            f"Read-your-writes: POST /key/generate waiting for {DATA_PLANES} ACKs, p50 / p99"
            f" ({figures.applied_everywhere} of {len(waited_ms)} answered {DATA_PLANES}/{DATA_PLANES})",
            f"{percentile(waited_ms, 0.5):.1f} / {percentile(waited_ms, 0.99):.1f} ms",
            "",
            "",
        ),
        (
            "Same write through a replica that does not wait, interleaved, p50 / p99",
            f"{percentile(unwaited_ms, 0.5):.1f} / {percentile(unwaited_ms, 0.99):.1f} ms",
            "",
            "",
        ),
        (
            "What waiting adds to a write, p50 / p99",
            f"{percentile(waited_ms, 0.5) - percentile(unwaited_ms, 0.5):.1f} / "
            f"{percentile(waited_ms, 0.99) - percentile(unwaited_ms, 0.99):.1f} ms",
            "",
            "",
        ),
    ]


def environment() -> list[tuple[str, str]]:
    """Date, machine and package versions of this run."""
    cpu = cpu_model()
    memory = "unknown"
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    packages = ", ".join(
        f"{name} {importlib.metadata.version(name)}" for name in ("grpcio", "protobuf", "aiohttp", "psycopg")
    )
    return [
        ("Date (UTC)", datetime.now(UTC).strftime("%Y-%m-%d %H:%M")),
        (
            "Machine",
            f"{platform.machine()}, {cpu}, {len(os.sched_getaffinity(0))} CPUs (nproc), {memory} RAM",
        ),
        ("Python", platform.python_version()),
        ("Packages", packages),
    ]


def markdown_section(figures: Figures) -> str:
    """This benchmark's section of RESULTS.md."""
    lines = [
        SECTION_TITLE,
        "",
        "Real processes on 127.0.0.1 (`make bench`): one control plane, data planes started by",
        "`hydite_common.devstack.Stack`, Postgres and NATS as `make test` uses them. Keys are",
        "COPYed into a freshly migrated database; propagation is sequential `POST /key/generate`",
        f"writes, each timed until all {DATA_PLANES} nodes report `acked_version` ≥ the write's version in",
        f"`GET /config/status` (polled every {POLL_SECONDS * 1000:.0f} ms). Start-to-ready times poll",
        "readiness every 50 ms. 1 MB = 10^6 bytes.",
        "",
    ]
    lines += figures_markdown(environment(), figure_rows(figures))
    return "\n".join(lines) + "\n"


def print_report(figures: Figures) -> None:
    """The figures as an aligned table on stdout."""
    print_figures(environment(), figure_rows(figures), target_width=12)


# ---------------------------------------------------------------- entry point


def parse_options(argv: Sequence[str] | None) -> Options:
    """Command-line options; --smoke is the small, fast mode `make test` runs."""
    parser = argparse.ArgumentParser(prog="python -m bench.config_bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="1,000 keys and 20 writes; no RESULTS.md")
    parser.add_argument("--keys", type=int, help="keys in the snapshot (default 100,000; smoke 1,000)")
    parser.add_argument("--writes", type=int, help="admin writes timed (default 200; smoke 20)")
    args = parser.parse_args(argv)
    smoke = bool(args.smoke)
    keys = args.keys if args.keys is not None else (1_000 if smoke else 100_000)
    writes = args.writes if args.writes is not None else (20 if smoke else 200)
    if keys < 1 or writes < 1:
        parser.error("--keys and --writes must be at least 1")
    default_size = args.keys is None and args.writes is None
    return Options(
        keys=keys,
        writes=writes,
        apply_runs=1 if smoke else 3,
        smoke=smoke,
        write_results=not smoke and default_size,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when it completed (targets missed or not), 1 when it could not."""
    options = parse_options(argv)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    figures = Figures(keys=options.keys, writes=options.writes)
    data_dir = Path(tempfile.mkdtemp(prefix="hydite-bench-"))
    stack = Stack(StackConfig.ephemeral(data_dir))
    started = time.perf_counter()
    print(f"config benchmark: {options.keys:,} keys, {options.writes} writes, {DATA_PLANES} data planes")
    try:
        measure_apply(options, stack.config.salt_key, figures)
        print(
            f"  in-process apply of {options.keys:,} keys: {statistics.median(figures.apply_seconds):.2f} s"
        )
        run_stack(stack, options, figures)
    except Exception:
        print(log_tails(stack), file=sys.stderr)
        raise
    finally:
        try:
            stack.remove()
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
    print_report(figures)
    print(f"\n(finished in {time.perf_counter() - started:.0f} s)")
    if options.write_results:
        write_section(SECTION_TITLE, markdown_section(figures))
    if figures.timeouts:
        print(f"{figures.timeouts} writes never reached every data plane", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
