"""The OpenAI-compatible family end to end: the official `openai` SDK through a stack to the fake
OpenAI upstream, deployed under DeepSeek, DashScope, Zhipu (Z.ai), Mistral and xAI prefixes. The fake
records what it received, so each row's quirk is seen arriving; DeepSeek's reasoning_content reaches
the client in answers and stream deltas and the call is billed by its usage. A LiteLLM config.yaml
with these prefixes bootstraps through HYDITE_CONFIG unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from hydite_common.devstack import Stack, StackConfig
from tests.fakes.openai_server import REASONING_TEXT, REASONING_USAGE, STREAM_WORDS, FakeOpenAI
from tests.harness import FAKE_UPSTREAM_KEY, ok_post, spend_row, unique

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
INPUT_PRICE, OUTPUT_PRICE = 2e-6, 8e-6
TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}


@pytest.fixture(scope="module")
def family(admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]) -> dict[str, str]:
    """One model group per provider prefix, all on the fake upstream, and a key for them."""
    _, base = fake_openai
    models = {
        "deepseek": "deepseek/deepseek-reasoner",
        "dashscope": "dashscope/qwen3-32b",
        "zai": "zai/glm-4.6",
        "mistral": "mistral/mistral-large-latest",
        "xai": "xai/grok-3-mini",
    }
    groups = {name: unique(f"family-{name}") for name in models}
    for name, model in models.items():
        params: dict[str, Any] = {"model": model, "api_base": base, "api_key": FAKE_UPSTREAM_KEY}
        if name == "deepseek":
            params |= {"input_cost_per_token": INPUT_PRICE, "output_cost_per_token": OUTPUT_PRICE}
        ok_post(admin, "/model/new", {"model_name": groups[name], "litellm_params": params})
    groups["key"] = ok_post(admin, "/key/generate", {"models": list(groups.values())})["key"]
    return groups


@pytest.fixture(scope="module")
def client(stack: Stack, family: dict[str, str]) -> Iterator[openai.OpenAI]:
    """The official SDK on the gateway with the family's key."""
    with openai.OpenAI(base_url=stack.base_url + "/v1", api_key=family["key"], max_retries=0) as sdk:
        yield sdk


PROMPT_TOKENS, COMPLETION_TOKENS = 11, 27
"""The fake's REASONING_USAGE."""


def _billed_right(row: dict[str, Any]) -> None:
    assert (REASONING_USAGE["prompt_tokens"], REASONING_USAGE["completion_tokens"]) == (
        PROMPT_TOKENS,
        COMPLETION_TOKENS,
    )
    assert (row["prompt_tokens"], row["completion_tokens"]) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    expected = PROMPT_TOKENS * INPUT_PRICE + COMPLETION_TOKENS * OUTPUT_PRICE
    assert row["spend"] == pytest.approx(expected)


def test_deepseek_reasoning_content_reaches_the_client_and_is_billed(
    client: openai.OpenAI, admin: httpx.Client, family: dict[str, str], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """The answer's message keeps reasoning_content; usage with reasoning tokens is billed."""
    raw = client.chat.completions.with_raw_response.create(model=family["deepseek"], messages=HI)
    answer = raw.parse()
    message = answer.choices[0].message
    assert message.content == "".join(STREAM_WORDS)
    assert (message.model_extra or {})["reasoning_content"] == REASONING_TEXT
    fake, _ = fake_openai
    assert fake.requests[-1]["model"] == "deepseek-reasoner"
    _billed_right(spend_row(admin, raw.headers["x-request-id"]))


def test_deepseek_stream_carries_reasoning_deltas_and_usage(
    client: openai.OpenAI, admin: httpx.Client, family: dict[str, str], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """Stream deltas carry reasoning_content before the content; the gateway asked for usage."""
    raw = client.chat.completions.with_raw_response.create(
        model=family["deepseek"],
        messages=HI,
        stream=True,
        stream_options={"include_usage": True},
    )
    reasoning, content, usage = "", "", None
    for chunk in raw.parse():
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            reasoning += (choice.delta.model_extra or {}).get("reasoning_content") or ""
            content += choice.delta.content or ""
    assert (reasoning, content) == (REASONING_TEXT, "".join(STREAM_WORDS))
    assert usage is not None and usage.completion_tokens == COMPLETION_TOKENS
    fake, _ = fake_openai
    assert fake.requests[-1]["stream_options"] == {"include_usage": True}
    _billed_right(spend_row(admin, raw.headers["x-request-id"]))


def test_dashscope_gets_enable_thinking_for_reasoning_effort(
    client: openai.OpenAI, family: dict[str, str], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """reasoning_effort reaches DashScope as its own switch, enable_thinking."""
    client.chat.completions.create(model=family["dashscope"], messages=HI, reasoning_effort="low")
    fake, _ = fake_openai
    sent = fake.requests[-1]
    assert (sent["model"], sent["enable_thinking"]) == ("qwen3-32b", True)
    assert "reasoning_effort" not in sent


def test_zhipu_gets_text_parts_as_one_string(
    client: openai.OpenAI, family: dict[str, str], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """Z.ai takes a message's text parts as one string; its stream is asked for usage."""
    parts: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "there"}]}
    ]
    stream = client.chat.completions.create(model=family["zai"], messages=parts, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "".join(STREAM_WORDS)
    fake, _ = fake_openai
    sent = fake.requests[-1]
    assert sent["messages"] == [{"role": "user", "content": "hi\nthere"}]
    assert sent["stream_options"] == {"include_usage": True}


def test_mistral_gets_its_names_and_values(
    client: openai.OpenAI, family: dict[str, str], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """seed arrives as random_seed, tool_choice 'required' as 'any', and the end user is not sent."""
    client.chat.completions.create(
        model=family["mistral"],
        messages=HI,
        seed=7,
        tools=[TOOL],
        tool_choice="required",
        user=unique("end-user"),
    )
    fake, _ = fake_openai
    sent = fake.requests[-1]
    assert (sent["random_seed"], sent["tool_choice"]) == (7, "any")
    assert not {"seed", "user"} & sent.keys()
    stream = client.chat.completions.create(model=family["mistral"], messages=HI, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "".join(STREAM_WORDS)
    assert "stream_options" not in fake.requests[-1]


def test_a_parameter_mistral_does_not_honour_is_refused_or_dropped(
    client: openai.OpenAI, family: dict[str, str], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """logprobs is not Mistral's: a 400 naming it, or dropped with drop_params."""
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=family["mistral"], messages=HI, logprobs=True)
    assert isinstance(refused.value.body, dict) and refused.value.body["param"] == "logprobs"
    client.chat.completions.create(
        model=family["mistral"],
        messages=HI,
        logprobs=True,
        extra_body={"drop_params": True},
    )
    fake, _ = fake_openai
    assert "logprobs" not in fake.requests[-1]


def test_xai_reasoning_model_refuses_penalties_or_drops_them(
    client: openai.OpenAI, family: dict[str, str], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """grok-3-mini takes no presence_penalty (a 400 naming it, or dropped) and thinks 'low' or 'high'."""
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=family["xai"], messages=HI, presence_penalty=0.5)
    assert isinstance(refused.value.body, dict)
    assert (refused.value.body["code"], refused.value.body["param"]) == (
        "unsupported_params",
        "presence_penalty",
    )
    client.chat.completions.create(
        model=family["xai"],
        messages=HI,
        presence_penalty=0.5,
        reasoning_effort="high",
        extra_body={"drop_params": True},
    )
    fake, _ = fake_openai
    sent = fake.requests[-1]
    assert (sent["model"], sent["reasoning_effort"]) == ("grok-3-mini", "high")
    assert "presence_penalty" not in sent
    calls = len(fake.requests)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=family["xai"], messages=HI, reasoning_effort="medium")
    assert isinstance(refused.value.body, dict) and refused.value.body["param"] == "reasoning_effort"
    assert "'low', 'high'" in refused.value.body["message"] and len(fake.requests) == calls


def test_supported_openai_params_follow_the_row(stack: Stack, family: dict[str, str]) -> None:
    """/utils/supported_openai_params answers from the row: Mistral has no logprobs, DeepSeek does."""

    def params(group: str) -> set[str]:
        response = httpx.get(
            stack.base_url + "/utils/supported_openai_params",
            params={"model": group},
            headers={"Authorization": f"Bearer {family['key']}"},
        )
        assert response.status_code == 200, response.text
        return set(response.json()["supported_openai_params"])

    assert "logprobs" not in params(family["mistral"]) and "seed" in params(family["mistral"])
    assert "logprobs" in params(family["deepseek"])
    xai = params(family["xai"])
    assert "reasoning_effort" in xai and not {"presence_penalty", "frequency_penalty", "stop"} & xai


# ---------------------------------------------------------------- a LiteLLM config.yaml


@pytest.fixture(scope="module")
def bootstrapped(
    tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str]
) -> Iterator[Stack]:
    """A stack whose control plane starts from a LiteLLM config.yaml using the family's prefixes."""
    _, base = fake_openai
    data_dir = Path(tmp_path_factory.mktemp("provider-family"))
    config = data_dir / "config.yaml"
    models = ["deepseek/deepseek-chat", "dashscope/qwen-plus", "zai/glm-4.6", "moonshot/kimi-k2"]
    config.write_text(
        yaml.safe_dump(
            {
                "model_list": [
                    {
                        "model_name": model.split("/", 1)[0],
                        "litellm_params": {"model": model, "api_base": base, "api_key": FAKE_UPSTREAM_KEY},
                    }
                    for model in models
                ]
                + [
                    {
                        "model_name": "local",
                        "litellm_params": {
                            "model": "hosted_vllm/Qwen/Qwen3-8B",
                            "api_base": base,
                            "api_key": FAKE_UPSTREAM_KEY,
                        },
                    }
                ],
                "litellm_settings": {"drop_params": True},
            }
        )
    )
    stack = Stack(StackConfig.ephemeral(data_dir))
    try:
        stack.start_dependencies()
        stack.start_controlplane(HYDITE_CONFIG=str(config))
        stack.start_dataplane()
        yield stack
    finally:
        stack.remove()


def test_a_litellm_config_with_these_prefixes_bootstraps_unchanged(
    bootstrapped: Stack, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """Every model of the file answers through its provider's row (Moonshot's clamp included)."""
    fake, _ = fake_openai
    key = httpx.post(
        bootstrapped.admin_url + "/key/generate",
        json={},
        headers={"Authorization": f"Bearer {bootstrapped.config.master_key}"},
        timeout=10,
    ).json()["key"]
    with openai.OpenAI(base_url=bootstrapped.base_url + "/v1", api_key=key, max_retries=0) as sdk:
        for group, upstream in (
            ("deepseek", "deepseek-chat"),
            ("dashscope", "qwen-plus"),
            ("zai", "glm-4.6"),
            ("local", "Qwen/Qwen3-8B"),
        ):
            answer = sdk.chat.completions.create(model=group, messages=HI)
            assert answer.choices[0].message.content
            assert fake.requests[-1]["model"] == upstream
        sdk.chat.completions.create(model="moonshot", messages=HI, temperature=1.8)
        assert (fake.requests[-1]["model"], fake.requests[-1]["temperature"]) == ("kimi-k2", 1.0)
