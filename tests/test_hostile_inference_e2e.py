"""Inference inputs that were 500s are OpenAI-shaped 400s, and the key keeps working afterwards."""

from __future__ import annotations

import secrets

import httpx

from hydite_common.devstack import Stack
from tests.harness import ok_post, synced


def test_malformed_stream_options_and_uncountable_text_are_400s(stack: Stack, admin: httpx.Client) -> None:
    """A string stream_options, a prompt holding <|endoftext|> and an 8 MB prompt to count are
    answered 400 or 200, never 500, and a chat call works right after."""
    model = f"hostile-{secrets.token_hex(3)}"
    ok_post(admin, "/model/new", {"model_name": model, "litellm_params": {"model": "mock/x"}})
    key = ok_post(admin, "/key/generate", {"models": [model]})["key"]
    synced(admin)
    with httpx.Client(
        base_url=stack.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:
        chat = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        options = client.post("/v1/chat/completions", json={**chat, "stream": True, "stream_options": "x"})
        assert options.status_code == 400 and options.json()["error"]["param"] == "stream_options"
        special = client.post("/utils/token_counter", json={"model": model, "prompt": "<|endoftext|>"})
        assert special.status_code == 200 and special.json()["total_tokens"] > 1
        huge = client.post("/utils/token_counter", json={"model": model, "prompt": "word " * 1_600_000})
        assert huge.status_code == 400 and huge.json()["error"]["code"] == "string_above_max_length"
        assert client.post("/v1/chat/completions", json=chat).status_code == 200
