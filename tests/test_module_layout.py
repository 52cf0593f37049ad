"""The shape of the code: every module of every service imports on its own, the package import
graph has no cycle, and the data plane runs without the database packages."""

from __future__ import annotations

import ast
import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx

from hydite_common.devstack import Stack, free_port
from tests.harness import ok_post, synced

ROOT = Path(__file__).resolve().parent.parent
SOURCE_ROOTS = (
    ROOT / "libs/common/src",
    ROOT / "services/dataplane/src",
    ROOT / "services/controlplane/src",
    ROOT / "services/spend-ingest/src",
)
PACKAGES = ("hydite_common", "hydite_dataplane", "hydite_controlplane", "hydite_spend_ingest")


def _excluded(module: str) -> bool:
    """Generated stubs, migration scripts and entry points are not imported on their own."""
    parts = module.split(".")
    return parts[-1] == "__main__" or "migrations" in parts[:-1] or module.endswith(".migrations.env")


def modules() -> dict[str, Path]:
    """Every module of the four packages, by dotted name (a package by its __init__)."""
    found: dict[str, Path] = {}
    for root in SOURCE_ROOTS:
        for package in PACKAGES:
            base = root / package
            if not base.is_dir():
                continue
            for path in sorted(base.rglob("*.py")):
                parts = list(path.relative_to(root).with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts.pop()
                name = ".".join(parts)
                if not _excluded(name):
                    found[name] = path
    return found


# A pristine parent (none of the project's modules imported; third-party ones preloaded to save
# time) forks one child per module, eight at a time; each child imports its module and reports.
_FORKING_IMPORTER = """
import json, os, sys, traceback
# Third-party packages, imported once and shared by the children (no gRPC channel exists to fork).
import aiohttp, orjson, pydantic, pydantic_settings, sqlalchemy, sqlmodel, nats, grpc, psycopg, yaml
import google.protobuf, immutables, multidict, cryptography.hazmat.primitives.ciphers.aead, alembic
import opentelemetry.sdk.trace, opentelemetry.exporter.otlp.proto.http.trace_exporter
names = json.loads(sys.argv[1])
failures = {}
running = []


def collect(child, read, name):
    with os.fdopen(read, "rb") as pipe:
        output = pipe.read()
    os.waitpid(child, 0)
    if output:
        failures[name] = output.decode(errors="replace")


for name in names:
    if len(running) >= 8:
        collect(*running.pop(0))
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read)
        try:
            __import__(name)
            message = b""
        except BaseException:
            message = traceback.format_exc().encode()
        os.write(write, message[-4000:])
        os._exit(0)
    os.close(write)
    running.append((child, read, name))
for waiting in running:
    collect(*waiting)
print(json.dumps(failures))
"""


def test_every_module_imports_on_its_own() -> None:
    """`import X` works for each module of each service in a fresh interpreter (no module depends on
    another having been imported first, as a partially initialised module would)."""
    names = sorted(modules())
    assert len(names) > 60
    result = subprocess.run(
        [sys.executable, "-c", _FORKING_IMPORTER, json.dumps(names)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    failures = json.loads(result.stdout.strip().splitlines()[-1])
    assert failures == {}, "\n\n".join(f"{name}:\n{trace}" for name, trace in failures.items())


def _imported(tree: ast.Module, module: str, is_package: bool, known: set[str]) -> Iterator[str]:
    """The project modules one module imports anywhere in it (type-only and local imports too),
    with the packages whose __init__ each import runs first (but for the module's own packages,
    which are initialising already whenever it is imported)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
            ]
        for target in targets:
            parts = target.split(".")
            for end in range(1, len(parts) + 1):
                name = ".".join(parts[:end])
                if name in known and name != module and not module.startswith(name + "."):
                    yield name


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    found = modules()
    known = set(found)
    return {
        name: set(_imported(ast.parse(path.read_text()), name, path.name == "__init__.py", known))
        for name, path in found.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for neighbour in sorted(graph.get(node, ())):
            if neighbour not in index:
                visit(neighbour)
                low[node] = min(low[node], low[neighbour])
            elif neighbour in on_stack:
                low[node] = min(low[node], index[neighbour])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_cycle() -> None:
    """No group of modules imports itself round, at run time or for types only."""
    graph = import_graph()
    assert "hydite_dataplane.pipeline" in graph
    assert cycles(graph) == []


def test_the_cycle_check_sees_a_cycle() -> None:
    """The check itself finds a two-module cycle and ones through a package's __init__."""
    assert cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert cycles({"p": {"p.m"}, "p.m": {"q"}, "q": {"p"}}) == [["p", "p.m", "q"]]
    # The data plane's old cycle: a module importing a package whose __init__ imports it back.
    old = ast.parse("from pkg.providers.base import UpstreamCall")
    known = {"pkg", "pkg.upstream", "pkg.providers", "pkg.providers.base"}
    graph = {
        "pkg.upstream": set(_imported(old, "pkg.upstream", False, known)),
        "pkg.providers": {"pkg.upstream"},
    }
    assert cycles(graph) == [["pkg.providers", "pkg.upstream"]]


def test_the_data_plane_serves_without_the_database_packages(stack: Stack, admin: httpx.Client) -> None:
    """With sqlmodel, SQLAlchemy and psycopg unimportable, a data plane starts, takes its config and
    answers a chat call."""
    port = free_port()
    service = stack.spawn(
        f"dataplane-nodb-{port}",
        "tests.dataplane_without_db",
        port,
        HYDITE_PORT=str(port),
        HYDITE_NODE_ID=f"dataplane-nodb-{port}",
        HYDITE_CONTROLPLANE_GRPC=f"127.0.0.1:{stack.config.grpc_port}",
    )
    try:
        model = f"nodb-{secrets.token_hex(3)}"
        ok_post(admin, "/model/new", {"model_name": model, "litellm_params": {"model": "mock/x"}})
        key = ok_post(admin, "/key/generate", {"models": [model]})["key"]
        synced(admin)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["object"] == "chat.completion"
    finally:
        stack.stop_service(service)
