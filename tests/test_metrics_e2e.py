"""The data plane's /metrics counts what it served, in Prometheus' text format."""

from __future__ import annotations

import httpx

from hydite_common.devstack import Stack
from tests.harness import synced, unique


def _value(text: str, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


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
