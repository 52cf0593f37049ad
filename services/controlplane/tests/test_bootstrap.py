"""The HYDITE_CONFIG bootstrap file is applied idempotently against a real database."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.credentials import CredentialCipher
from hydite_controlplane.bootstrap import BootstrapError, apply_bootstrap, parse_bootstrap
from hydite_controlplane.db import run_sql
from hydite_controlplane.models.deployments import DeploymentRow
from hydite_controlplane.settings import ControlplaneSettings

CIPHER = CredentialCipher("bootstrap-test-salt")

CONFIG = """
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: https://example.invalid/v1
      api_key: os.environ/HYDITE_TEST_PROVIDER_KEY
      rpm: 60
    model_info:
      id: boot-gpt
      max_tokens: 128000
  - model_name: demo
    litellm_params:
      model: mock/demo
key_groups:
  - name: default
    models: [gpt-4o-mini, demo]
    routing_strategy: least-busy
litellm_settings:
  drop_params: true
"""


async def _head(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        result = await run_sql(session, "SELECT coalesce(max(version), 0) FROM config_changes")
        return int(result.scalar_one())


async def test_bootstrap_applies_once_and_then_changes_nothing(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first apply writes every entry in one version; the same file again writes nothing."""
    monkeypatch.setenv("HYDITE_TEST_PROVIDER_KEY", "sk-provider-secret-1")
    bootstrap = parse_bootstrap(CONFIG)
    assert await apply_bootstrap(sessions, CIPHER, bootstrap) == 3
    first_head = await _head(sessions)
    assert first_head == 1
    assert await apply_bootstrap(sessions, CIPHER, parse_bootstrap(CONFIG)) == 0
    assert await _head(sessions) == first_head
    async with sessions() as session:
        row = await session.get(DeploymentRow, "boot-gpt")
    assert row is not None and row.rpm == 60 and row.model_info == {"max_tokens": 128000}
    assert CIPHER.decrypt(row.api_key_encrypted) == "sk-provider-secret-1"


async def test_bootstrap_rewrites_only_what_changed(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rotated secret or a removed param changes just that entry, and removed params are reset."""
    monkeypatch.setenv("HYDITE_TEST_PROVIDER_KEY", "sk-provider-secret-1")
    await apply_bootstrap(sessions, CIPHER, parse_bootstrap(CONFIG))
    monkeypatch.setenv("HYDITE_TEST_PROVIDER_KEY", "sk-provider-secret-2")
    assert await apply_bootstrap(sessions, CIPHER, parse_bootstrap(CONFIG)) == 1
    assert (
        await apply_bootstrap(sessions, CIPHER, parse_bootstrap(CONFIG.replace("      rpm: 60\n", ""))) == 1
    )
    async with sessions() as session:
        row = await session.get(DeploymentRow, "boot-gpt")
    assert row is not None and row.rpm is None
    assert CIPHER.decrypt(row.api_key_encrypted) == "sk-provider-secret-2"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("model_list: [", "not valid YAML"),
        ("- just a list", "must be a mapping"),
        (
            "model_list:\n  - model_name: x\n    litellm_params: {model: mock/x, colour: 1}\n    bogus: 2",
            "bogus",
        ),
        (
            "model_list:\n  - model_name: x\n"
            "    litellm_params: {model: openai/x, api_key: os.environ/NOPE_UNSET}",
            "NOPE_UNSET",
        ),
        ("key_groups:\n  - name: g\n    routing_strategy: fastest", "routing_strategy"),
    ],
    ids=["yaml", "not-mapping", "unknown-field", "missing-env", "bad-strategy"],
)
def test_bad_bootstrap_files_are_refused_with_a_clear_reason(source: str, message: str) -> None:
    """A bootstrap file that cannot be applied fails start-up with a message naming the problem."""
    with pytest.raises(BootstrapError, match=message):
        parse_bootstrap(source)


def test_hydite_config_names_the_bootstrap_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """The control plane reads the file's path from HYDITE_CONFIG."""
    monkeypatch.setenv("HYDITE_CONFIG", "/etc/hydite/config.yaml")
    assert ControlplaneSettings().config_file == "/etc/hydite/config.yaml"


def test_litellm_settings_drop_params_become_proxy_settings_and_the_rest_is_not_applied() -> None:
    """drop_params and additional_drop_params are kept; LiteLLM's other settings are reported,
    never a reason to refuse the file."""
    parsed = parse_bootstrap(
        "litellm_settings:\n  drop_params: true\n  additional_drop_params: [top_k]\n"
        "  success_callback: [langfuse]\n"
    )
    assert parsed.proxy_settings() == {"drop_params": True, "additional_drop_params": ["top_k"]}
    assert parse_bootstrap("model_list: []\n").proxy_settings() == {}
