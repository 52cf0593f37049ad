"""A stream that ends without its usage is billed by counting what it relayed with the bundled
tokenizer, and says so; a stream whose provider reported usage is billed by the report."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from hydite_common.devstack import Stack
from hydite_dataplane.encodings import encoding_for
from hydite_dataplane.usage.estimate import prompt_tokens
from tests.fakes.openai_server import FAKE_USAGE, FakeOpenAI
from tests.harness import deploy_fake, ok_post, spend_row, synced, unique


def _relayed_text(response: httpx.Response) -> str:
    text = []
    for line in response.text.splitlines():
        if line.startswith("data: {"):
            for choice in orjson.loads(line[6:]).get("choices", []):
                text.append(choice.get("delta", {}).get("content") or "")
    return "".join(text)


def _streamed(
    stack: Stack, admin: httpx.Client, fake_base: str, upstream: str, content: str
) -> tuple[dict[str, Any], httpx.Response]:
    """A streamed chat through a new deployment of the fake's upstream model: its body and response."""
    model = unique("estimate")
    deploy_fake(admin, fake_base, model, upstream)
    key = ok_post(admin, "/key/generate", {})["key"]
    synced(admin)
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": content}]}
    with httpx.Client(base_url=stack.base_url, timeout=10) as client:
        response = client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=body)
    return body, response


def test_a_stream_cut_before_its_usage_is_billed_by_the_tokens_it_relayed(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """The fake cuts the stream after two content events (no usage, no [DONE]): the row counts the
    prompt and exactly the relayed text with the model's encoding, marked estimated."""
    body, response = _streamed(stack, admin, fake_openai[1], "stream-break", "Count me, please.")
    relayed = _relayed_text(response)
    assert relayed
    row = spend_row(admin, response.headers["x-request-id"])
    encoding, _ = encoding_for("stream-break")
    assert row["metadata"]["usage_estimated"] is True and row["metadata"]["usage_source"] == "estimated"
    assert row["metadata"]["route"] == "/v1/chat/completions" and row["metadata"]["latency_ms"] > 0
    assert row["completion_tokens"] == len(encoding.encode(relayed, disallowed_special=()))
    assert row["prompt_tokens"] == prompt_tokens("stream-break", body)


def test_a_stream_with_its_usage_is_billed_by_the_report(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    _, response = _streamed(stack, admin, fake_openai[1], "gpt-4o-mini", "hi")
    row = spend_row(admin, response.headers["x-request-id"])
    assert row["metadata"]["usage_estimated"] is False and row["metadata"]["usage_source"] == "provider"
    assert len(row["metadata"]["client_ip_hash"]) == 32
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        FAKE_USAGE["prompt_tokens"],
        FAKE_USAGE["completion_tokens"],
    )
