"""store_prompts reaches the config snapshot: on a key's and a team's message, and as the proxy-wide
setting general_settings.store_prompts_in_spend_logs names."""

from __future__ import annotations

from hydite_common.config_types import STORE_PROMPTS_SETTING
from hydite_controlplane.bootstrap import parse_bootstrap
from hydite_controlplane.config.builder import key_message, team_message
from hydite_controlplane.models.keys import VirtualKeyRow
from hydite_controlplane.models.principals import TeamRow


def test_keys_and_teams_carry_store_prompts() -> None:
    """A key's and a team's store_prompts is on its message; unset is false."""
    assert key_message(VirtualKeyRow(token="t", key_name="sk-...t", store_prompts=True)).store_prompts
    assert not key_message(VirtualKeyRow(token="u", key_name="sk-...u")).store_prompts
    assert team_message(TeamRow(team_id="team", store_prompts=True)).store_prompts
    assert not team_message(TeamRow(team_id="other")).store_prompts


def test_general_settings_store_prompts_becomes_a_proxy_setting() -> None:
    """store_prompts_in_spend_logs is applied; general_settings' other entries are not."""
    parsed = parse_bootstrap("general_settings:\n  store_prompts_in_spend_logs: true\n  master_key: sk-1\n")
    assert parsed.proxy_settings() == {STORE_PROMPTS_SETTING: True}
    assert parse_bootstrap("general_settings:\n  master_key: sk-1\n").proxy_settings() == {}
    assert parse_bootstrap("general_settings:\n").proxy_settings() == {}
