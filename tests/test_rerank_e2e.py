"""POST /v1/rerank and /rerank through the data plane to Cohere and Jina upstreams."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hydite_common.devstack import Stack
from tests.fakes.openai_server import FakeServerThread
from tests.fakes.rerank_server import FakeRerank
from tests.harness import wait_until

RERANK_KEY = "rerank-upstream-secret"
DOCUMENTS = ["the cat sat on the mat", "gateways route requests", "a cat and a dog"]


@pytest.fixture(scope="module")
def rerank(stack: Stack, admin: httpx.Client) -> Iterator[dict[str, Any]]:
    """A Cohere and a Jina deployment on one fake, and a key for both."""
    fake = FakeRerank(api_key=RERANK_KEY)
    server = FakeServerThread(fake.app())
    base = server.start()
    suffix = secrets.token_hex(3)
    names = {"cohere": f"cohere-rerank-{suffix}", "jina": f"jina-rerank-{suffix}"}
    upstream = {"cohere": "rerank-v3.5", "jina": "jina-reranker-v2-base-multilingual"}
    for provider, name in names.items():
        created = admin.post(
            "/model/new",
            json={
                "model_name": name,
                "litellm_params": {
                    "model": f"{provider}/{upstream[provider]}",
                    "api_base": base,
                    "api_key": RERANK_KEY,
                },
                "model_info": {"mode": "rerank"},
            },
        )
        assert created.status_code == 200, created.text
    key = admin.post("/key/generate", json={"models": list(names.values())}).json()["key"]
    wait_until(lambda: _rerank(stack, key, names["jina"]).status_code == 200, timeout=2.0)
    yield {"fake": fake, "names": names, "key": key}
    server.stop()


def _rerank(stack: Stack, key: str, model: str, path: str = "/v1/rerank", **extra: Any) -> httpx.Response:
    return httpx.post(
        stack.base_url + path,
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "query": "cat", "documents": DOCUMENTS, **extra},
    )


@pytest.mark.parametrize("provider", ["cohere", "jina"])
@pytest.mark.parametrize("path", ["/v1/rerank", "/rerank"])
def test_rerank_answers_in_cohere_shape(
    stack: Stack, rerank: dict[str, Any], provider: str, path: str
) -> None:
    """Both providers answer with Cohere's results (index, relevance_score, document when asked)."""
    response = _rerank(stack, rerank["key"], rerank["names"][provider], path, top_n=2, return_documents=True)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["index"] for r in body["results"]] == [0, 2]
    assert body["results"][0]["document"] == {"text": DOCUMENTS[0]}
    assert body["results"][0]["relevance_score"] >= body["results"][1]["relevance_score"]
    assert "billed_units" in body["meta"]
    path_sent, sent = rerank["fake"].requests[-1]
    assert sent["model"] != rerank["names"][provider] and sent["top_n"] == 2
    assert path_sent == ("/v2/rerank" if provider == "cohere" else "/v1/rerank")


def test_rerank_validation_and_billing(stack: Stack, rerank: dict[str, Any], admin: httpx.Client) -> None:
    """Missing documents is a 400; a Jina call is billed by its tokens."""
    bad = httpx.post(
        stack.base_url + "/v1/rerank",
        headers={"Authorization": f"Bearer {rerank['key']}"},
        json={"model": rerank["names"]["jina"], "query": "cat"},
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "documents"
    response = _rerank(stack, rerank["key"], rerank["names"]["jina"])
    request_id = response.headers["x-request-id"]
    row = wait_until(
        lambda: admin.get("/spend/logs", params={"request_id": request_id}).json(), timeout=10.0
    )[0]
    assert (
        row["call_type"] == "rerank"
        and row["prompt_tokens"] == response.json()["meta"]["billed_units"]["total_tokens"]
    )
