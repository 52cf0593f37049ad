"""Every service's /metrics, in Prometheus' text format, counts what the stack served: answered,
streamed, limited, retried, fallen back and failed requests on the data plane, admin calls on the
control plane, written batches on spend-ingest; the Grafana dashboard queries only series that
exist; and every inference answer carries x-hydite-overhead-ms."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hydite_common.devstack import Stack
from tests.fakes.openai_server import FakeOpenAI
from tests.harness import deploy_fake, synced, unique, wait_until

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy/grafana/hydite-dashboard.json"
METRIC_NAME = re.compile(r"\b(hydite_[a-z0-9_]+)")


def _value(text: str, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def _sample(text: str, name: str, *labels: str) -> float:
    """The sum of the samples of name whose labels include every one given."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            series, _, value = line.rpartition(" ")
            if series.split("{", 1)[0] == name and all(label in series for label in labels):
                total += float(value)
    return total


def test_metrics_count_requests_tokens_and_failures(stack: Stack, admin: httpx.Client) -> None:
    """Two answered calls and one refused by its limit show up under the model's name."""
    model = unique("metrics-mock")
    assert admin.post(
        "/model/new", json={"model_name": model, "litellm_params": {"model": "mock/m"}}
    ).is_success
    key = admin.post("/key/generate", json={"rpm_limit": 2}).json()["key"]
    synced(admin)
    statuses = [
        httpx.post(
            stack.base_url + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": model, "messages": [{"role": "user", "content": "count me"}]},
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    scraped = httpx.get(stack.base_url + "/metrics")
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    ok = f'hydite_requests_total{{model="{model}",deployment='
    assert _value(text, ok) == 3
    assert _value(text, f'hydite_tokens_total{{model="{model}"') > 0
    assert _value(text, f'hydite_request_duration_seconds_count{{model="{model}"}}') == 3
    refused = [line for line in text.splitlines() if line.startswith(ok) and 'status="429"' in line]
    assert len(refused) == 1 and refused[0].endswith(" 1"), refused
    assert _value(text, "hydite_config_version ") >= 1


@dataclass
class Served:
    """What the traffic was, what each service's /metrics said after it, and the answers' headers."""

    answered: str
    failing: str
    flaky: str
    alias: str
    cooled: str
    dataplane: str
    controlplane: str
    ingest: str
    overheads: dict[str, str | None]


@pytest.fixture(scope="module")
def served(stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]) -> Served:
    """A success, a stream, a rate-limit refusal, a group whose two deployments fail (retried, then
    a fallback answers) and a provider 429 (a cooldown); then every service scraped."""
    _, base = fake_openai
    answered, failing, limited = unique("obs-ok"), unique("obs-failing"), unique("obs-limited")
    deploy_fake(admin, base, answered, "gpt-4o")
    deploy_fake(admin, base, failing, "fail-500")
    deploy_fake(admin, base, failing, "fail-500")
    cooled = deploy_fake(admin, base, limited, "fail-429")
    alias = unique("obs-alias")
    key = admin.post("/key/generate", json={"rpm_limit": 5, "key_alias": alias}).json()["key"]
    synced(admin)
    headers = {"Authorization": f"Bearer {key}"}
    messages = [{"role": "user", "content": "observe me"}]

    def chat(**body: object) -> httpx.Response:
        return httpx.post(stack.base_url + "/v1/chat/completions", headers=headers, json=body, timeout=10)

    complete = chat(model=answered, messages=messages)
    streamed = chat(model=answered, messages=messages, stream=True)
    fell_back = chat(model=failing, messages=messages, num_retries=1, fallbacks=[answered])
    upstream_429 = chat(model=limited, messages=messages, num_retries=0)
    assert [complete.status_code, streamed.status_code, fell_back.status_code] == [200, 200, 200]
    assert upstream_429.status_code == 429
    refused = [chat(model=answered, messages=messages) for _ in range(3)][-1]
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rpm_limit_exceeded"
    overheads = {
        "complete": complete.headers.get("x-hydite-overhead-ms"),
        "stream": streamed.headers.get("x-hydite-overhead-ms"),
        "upstream error": upstream_429.headers.get("x-hydite-overhead-ms"),
        "limit refusal": refused.headers.get("x-hydite-overhead-ms"),
    }
    ingest_url = f"http://127.0.0.1:{stack.config.ingest_port}/metrics"
    wait_until(
        lambda: _value(httpx.get(ingest_url, timeout=5).text, "hydite_ingest_batch_events_count") > 0,
        timeout=15.0,
        interval=0.1,
    )
    return Served(
        answered=answered,
        failing=failing,
        flaky=limited,
        alias=alias,
        cooled=cooled,
        dataplane=httpx.get(stack.base_url + "/metrics", timeout=5).text,
        controlplane=httpx.get(stack.admin_url + "/metrics", timeout=5).text,
        ingest=httpx.get(ingest_url, timeout=5).text,
        overheads=overheads,
    )


def test_every_inference_answer_says_its_overhead(served: Served) -> None:
    """x-hydite-overhead-ms is on complete and streamed answers, provider errors and limit refusals."""
    for kind, value in served.overheads.items():
        assert value is not None and float(value) >= 0, (kind, value)


def test_the_dataplane_counts_outcomes_retries_fallbacks_cooldowns_and_keys(served: Served) -> None:
    """Requests by status, limit refusals by kind, errors by type, retries, fallbacks, cooldowns,
    key aliases, overhead and TTFT histograms, in-flight requests and the snapshot's age."""
    text = served.dataplane
    answered = f'model="{served.answered}"'
    assert _sample(text, "hydite_requests_total", answered, 'provider="openai"', 'status="200"') >= 3
    assert _sample(text, "hydite_limit_rejections_total", answered, 'limit="rpm"') == 2
    limited = f'model="{served.flaky}"'
    assert _sample(text, "hydite_errors_total", limited, 'type="rate_limit_error"') == 1
    assert _sample(text, "hydite_limit_rejections_total", limited) == 0
    assert _sample(text, "hydite_retries_total", f'model="{served.failing}"') == 1
    assert _sample(text, "hydite_fallbacks_total", f'model="{served.failing}"') == 1
    assert _sample(text, "hydite_cooldowns_total", f'deployment="{served.cooled}"') == 1
    assert _sample(text, "hydite_key_requests_total", f'key_alias="{served.alias}"', 'status="429"') == 3
    assert _sample(text, "hydite_key_requests_total", f'key_alias="{served.alias}"', 'status="200"') == 4
    assert _sample(text, "hydite_time_to_first_token_seconds_count", answered) == 1
    assert _value(text, "hydite_gateway_overhead_seconds_count ") >= 6
    assert _sample(text, "hydite_deployment_attempts_total") >= 5
    for name in (
        "hydite_requests_in_flight",
        "hydite_deployments_cooling",
        "hydite_config_snapshot_age_seconds",
    ):
        assert re.search(rf"^{name} \d", text, re.MULTILINE), name
    assert "key_hash" not in text and "sk-" not in text


def test_the_controlplane_counts_admin_calls_and_config(served: Served) -> None:
    """Admin requests by route template, their latency, config version, streams open, snapshot
    builds and the database check."""
    text = served.controlplane
    assert (
        _sample(text, "hydite_admin_requests_total", 'route="/key/generate"', 'method="POST"', 'status="200"')
        >= 1
    )
    assert _sample(text, "hydite_admin_request_duration_seconds_count", 'route="/model/new"') >= 4
    assert _value(text, "hydite_controlplane_config_version ") >= 1
    assert _value(text, "hydite_controlplane_config_streams ") >= 1
    assert _sample(text, "hydite_config_snapshot_build_seconds_count", 'kind="full"') >= 1
    assert _value(text, "hydite_controlplane_database_up ") == 1
    assert "hydite_budget_reset_passes_total" in text


def test_spend_ingest_counts_batches_writes_and_lag(served: Served) -> None:
    """Events written, batch sizes and write latency histograms, lag and the consumer's pending counts."""
    text = served.ingest
    assert _value(text, "hydite_ingest_events_written_total") >= 1
    assert _value(text, "hydite_ingest_write_seconds_count") >= 1
    for name in (
        "hydite_ingest_batch_events_bucket",
        "hydite_ingest_lag_seconds",
        "hydite_ingest_pending_messages",
        "hydite_ingest_redeliveries_total",
        "hydite_ingest_poison_messages_total",
    ):
        assert name in text, name


def test_the_dashboard_queries_only_series_the_services_expose(served: Served) -> None:
    """Every metric name a panel of deploy/grafana/hydite-dashboard.json queries is in some
    service's exposition after the traffic, so the dashboard cannot drift from the code."""
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        for name in METRIC_NAME.findall(target["expr"])
    }
    assert len(queried) >= 20
    exposed = {
        line.split("{", 1)[0].split(" ", 1)[0]
        for text in (served.dataplane, served.controlplane, served.ingest)
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert queried <= exposed, sorted(queried - exposed)
