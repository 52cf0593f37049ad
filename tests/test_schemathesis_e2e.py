"""Schemathesis against the gateway's own /openapi.json: at most ten seeded examples per operation,
sent with the master key to a stack of its own (so what it creates never reaches other tests), and
no answer may be a 5xx. The same stack exposes /docs, whose page and assets are checked here too."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation

from hydite_common.devstack import Stack, StackConfig

FUZZ_MODEL = "fuzz-model"
"""A mock deployment every generated inference body names, so requests get past the model lookup
into the pipeline (the mock provider answers chat itself, and refuses what it cannot do)."""

MAX_EXAMPLES = 10
"""Examples per operation (the first ones hypothesis finds for the seed: the run is reproducible)."""

Operation = APIOperation[Any, Any, Any, Any]

SKIPPED_OPERATIONS = {
    "GET /metrics": "Prometheus text, nothing to fuzz",
    "GET /docs": "a static page",
    "GET /health": "calls every deployment, also those the fuzzed /model/new made up (tests/test_health.py)",
}


@pytest.fixture(scope="module")
def probe_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A control plane and a data plane (with EXPOSE_DOCS=true) of their own database and NATS
    prefix; spend-ingest is not needed, nothing here reads spend."""
    running = Stack(StackConfig.ephemeral(Path(tmp_path_factory.mktemp("schemathesis"))))
    try:
        running.check_ports()
        running.start_dependencies()
        running.start_controlplane()
        running.start_dataplane(EXPOSE_DOCS="true")
        status, answer = running.admin_call(
            "POST", "/model/new", {"model_name": FUZZ_MODEL, "litellm_params": {"model": "mock/fuzz"}}
        )
        assert status == 200, answer
        yield running
    finally:
        running.remove()


def fuzzed(operation: Operation) -> bool:
    """One of each family of twin paths: the /v1 form of an inference path (the bare, /engines and
    Azure forms reach the same handler), every admin path."""
    label = f"{operation.method.upper()} {operation.path}"
    if label in SKIPPED_OPERATIONS:
        return False
    path = operation.path
    if path.startswith(("/engines/", "/openai/deployments/", "/v1/engines/", "/v1/openai/deployments/")):
        return False
    twin = f"/v1{path}"
    return twin not in operation.schema.raw_schema["paths"]


def naming_the_fuzz_model(case: Any) -> Any:
    """case, its JSON or form body naming FUZZ_MODEL."""
    if isinstance(case.body, dict):
        case.body["model"] = FUZZ_MODEL
    return case


def run_operation(operation: Operation, base_url: str, headers: dict[str, str]) -> list[str]:
    """The 5xx answers MAX_EXAMPLES seeded examples of operation got (as reproducible curl lines)."""
    found: list[str] = []

    strategy = operation.as_strategy()
    if operation.path.startswith("/v1/"):
        strategy = strategy.map(naming_the_fuzz_model)

    @hypothesis.given(case=strategy)
    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        try:
            case.validate_response(response, checks=[not_a_server_error], headers=headers)
        except FailureGroup:
            found.append(
                f"{response.status_code} {case.as_curl_command(headers=headers)}: {response.text[:300]}"
            )

    check()
    return found


def test_no_operation_answers_a_server_error(probe_stack: Stack) -> None:
    """Every fuzzed operation of /openapi.json answers each example with something other than 5xx."""
    document = httpx.get(probe_stack.base_url + "/openapi.json", timeout=30).json()
    assert document["info"]["x-hydite-controlplane"]["included"] is True
    schema = schemathesis.openapi.from_dict(document)
    headers = {"Authorization": f"Bearer {probe_stack.config.master_key}"}
    failures: list[str] = []
    ran = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        if not fuzzed(operation):
            continue
        ran += 1
        failures += run_operation(operation, probe_stack.base_url, headers)
    assert ran > 50
    assert not failures, "\n".join(failures)


def test_docs_page_and_assets_come_from_the_gateway(probe_stack: Stack) -> None:
    """/docs loads Swagger UI's stylesheet and script from the gateway itself, names no other host,
    and points the UI at /openapi.json."""
    page = httpx.get(probe_stack.base_url + "/docs", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in page.text
    assert not re.search(r"(?:src|href)\s*=\s*[\"'](?:https?:)?//", page.text)
    assets = re.findall(r"(?:src|href)=\"(/docs/[^\"]+)\"", page.text)
    assert {"/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js"} <= set(assets)
    for asset in assets:
        answer = httpx.get(probe_stack.base_url + asset, timeout=10)
        assert answer.status_code == 200, asset
        assert len(answer.content) > 0
    css = httpx.get(probe_stack.base_url + "/docs/swagger-ui.css", timeout=10)
    assert css.headers["content-type"].startswith("text/css")
    # The stylesheet's images are inline: it loads nothing from anywhere.
    assert all(u.strip("\"'").startswith("data:") for u in re.findall(r"url\(([^)]*)\)", css.text))
    missing = httpx.get(probe_stack.base_url + "/docs/index.html", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "invalid_request_error"


CHROMIUM = shutil.which("chromium")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian package chromium)")
def test_docs_render_the_operations_in_a_browser(probe_stack: Stack, tmp_path: Path) -> None:
    """Headless Chromium, with no network but the gateway, renders /docs with the tags of both
    planes' operations."""
    assert CHROMIUM is not None
    # The flags keep Chromium from reaching out for updates, sync or field trials (the network is closed).
    done = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
            probe_stack.base_url + "/docs",
        ],
        capture_output=True, text=True, timeout=90, check=True,
    )  # fmt: skip
    dom = done.stdout
    assert 'class="swagger-ui' in dom
    # Tags start folded: each plane's tags are there, each a section of its operations.
    rendered = set(re.findall(r'id="operations-tag-([^"]+)"', dom))
    assert {"inference", "anthropic", "key", "team"} <= rendered, sorted(rendered)
