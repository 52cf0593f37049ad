"""LiteLLM's proxy-wide `litellm_settings` that Hydite applies, from a bootstrap file
(HYDITE_CONFIG): `drop_params` and `additional_drop_params` reach every data plane through the
snapshot, and a parameter a provider cannot honour is dropped instead of refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from hydite_common.devstack import Stack, StackConfig
from tests.fakes.anthropic_server import FakeAnthropic
from tests.harness import FAKE_UPSTREAM_KEY


@pytest.fixture(scope="module")
def settings_stack(
    tmp_path_factory: pytest.TempPathFactory, fake_anthropic: tuple[FakeAnthropic, str]
) -> Iterator[Stack]:
    """A stack whose control plane starts with a bootstrap file setting drop_params proxy-wide."""
    _, base = fake_anthropic
    data_dir = Path(tmp_path_factory.mktemp("proxy-settings"))
    config = data_dir / "hydite.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model_list": [
                    {
                        "model_name": "claude",
                        "litellm_params": {
                            "model": "anthropic/claude-sonnet-4-5",
                            "api_base": base,
                            "api_key": FAKE_UPSTREAM_KEY,
                        },
                    }
                ],
                "litellm_settings": {
                    "drop_params": True,
                    "additional_drop_params": ["top_k"],
                    "success_callback": ["langfuse"],
                },
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


def test_litellm_settings_drop_params_applies_on_every_call(
    settings_stack: Stack, fake_anthropic: tuple[FakeAnthropic, str]
) -> None:
    """logit_bias (not Anthropic's) is dropped, not refused; top_k (Anthropic's own, but in
    additional_drop_params) never reaches the provider; an unapplied LiteLLM setting starts nothing wrong."""
    fake, _ = fake_anthropic
    stack = settings_stack
    key = httpx.post(
        stack.admin_url + "/key/generate",
        json={},
        headers={"Authorization": f"Bearer {stack.config.master_key}"},
        timeout=10,
    ).json()["key"]
    with openai.OpenAI(base_url=stack.base_url + "/v1", api_key=key, max_retries=0) as client:
        answer = client.chat.completions.create(
            model="claude",
            messages=[{"role": "user", "content": "hi"}],
            logit_bias={"1": 5},
            extra_body={"top_k": 3},
        )
    assert answer.choices[0].message.content
    sent = fake.requests[-1]
    assert "logit_bias" not in sent and "top_k" not in sent
    assert sent["model"] == "claude-sonnet-4-5"
