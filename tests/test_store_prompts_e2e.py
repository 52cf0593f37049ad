"""A key or team that stores prompts gets each request's prompt and answer in its spend row (sent out
of band, never in the usage event); others never do; a stored prompt can be redacted."""

from __future__ import annotations

import httpx
import openai
from openai.types.chat import ChatCompletionMessageParam

from hydite_common.devstack import Stack
from tests.fakes.openai_server import STREAM_WORDS, FakeOpenAI
from tests.harness import deploy_fake, ok_post, spend_row, synced, unique

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Remember this prompt, please."}]


def _client(stack: Stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=stack.base_url + "/v1", max_retries=0)


def _request_id(client: openai.OpenAI, model: str, *, stream: bool) -> str:
    if stream:
        with client.chat.completions.with_streaming_response.create(
            model=model,
            messages=MESSAGES,
            stream=True,
        ) as response:
            for _ in response.iter_lines():
                pass
            return response.headers["x-request-id"]
    raw = client.chat.completions.with_raw_response.create(model=model, messages=MESSAGES)
    return raw.headers["x-request-id"]


def test_a_key_that_stores_prompts_gets_prompt_and_answer_with_its_spend_row(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    model = unique("stored")
    deploy_fake(admin, fake_openai[1], model, "gpt-4o-mini")
    storing = ok_post(admin, "/key/generate", {"store_prompts": True})["key"]
    team = ok_post(admin, "/team/new", {"team_alias": unique("t"), "store_prompts": True})["team_id"]
    team_key = ok_post(admin, "/key/generate", {"team_id": team})["key"]
    plain = ok_post(admin, "/key/generate", {})["key"]
    synced(admin)

    complete = spend_row(admin, _request_id(_client(stack, storing), model, stream=False))
    assert complete["messages"] == {"messages": MESSAGES}
    assert complete["response"]["choices"][0]["message"]["content"]
    assert complete["metadata"]["payload_stored"] is True

    streamed = spend_row(admin, _request_id(_client(stack, team_key), model, stream=True))
    assert streamed["messages"] == {"messages": MESSAGES}
    assert streamed["response"] == {"stream_text": "".join(STREAM_WORDS)}

    unstored = spend_row(admin, _request_id(_client(stack, plain), model, stream=False))
    assert unstored["messages"] is None and unstored["response"] is None
    assert "payload_stored" not in unstored["metadata"]

    redacted = ok_post(admin, "/spend/logs/redact", {"request_ids": [complete["request_id"]]})
    assert redacted["redacted"] == 1
    row = spend_row(admin, complete["request_id"])
    assert row["messages"] is None and row["response"] is None
