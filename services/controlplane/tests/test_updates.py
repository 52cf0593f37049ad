"""Unit tests of the one admin update function (hydite_controlplane.admin.updates.apply_update)
as each aggregate uses it: principals, keys and model deployments (pure, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hydite_common.credentials import CredentialCipher
from hydite_common.errors import InvalidRequestError, UnprocessableEntityError
from hydite_controlplane.admin.customers import CUSTOMERS
from hydite_controlplane.admin.keys import UpdateKeyRequest, apply_key_settings
from hydite_controlplane.admin.models import PartialLitellmParams, apply_params
from hydite_controlplane.admin.teams import TEAMS
from hydite_controlplane.admin.users import USERS
from hydite_controlplane.models import CustomerRow, DeploymentRow, TeamRow, UserRow, VirtualKeyRow

CIPHER = CredentialCipher("updates-test-salt")
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def _team() -> TeamRow:
    return TeamRow(team_id="t", team_alias="old", models=["a"], metadata_={"v": 1}, updated_at=LONG_AGO)


def _key() -> VirtualKeyRow:
    return VirtualKeyRow(
        token="hash", key_name="sk-...abcd", key_alias="alias", models=["a"], tags=["x"], blocked=True,
        model_rpm_limit={"a": 1}, metadata_={"v": 1}, expires=LONG_AGO, updated_at=LONG_AGO,
    )  # fmt: skip


def _deployment() -> DeploymentRow:
    return DeploymentRow(
        model_id="d", model_name="m", provider="openai", upstream_model="gpt-4o", weight=2.0, rpm=9,
        extra_params={"kept": 1}, api_key_encrypted=CIPHER.encrypt("sk-old"),
    )  # fmt: skip


def test_unset_fields_keep_their_value_and_updated_at_moves() -> None:
    """Only the fields the body set change; metadata lands in its column and updated_at is now."""
    team = _team()
    TEAMS.apply(team, TEAMS.fields.model_validate({"team_id": "t", "metadata": {"v": 2}}))
    assert (team.team_alias, team.models, team.metadata_) == ("old", ["a"], {"v": 2})
    assert team.updated_at > LONG_AGO


def test_team_null_clears_a_nullable_column_and_leaves_any_other() -> None:
    """null clears a nullable column of a team; on a column that cannot hold it, it means "not
    set" (LiteLLM's bodies send null for unset fields) and leaves the value."""
    team = _team()
    TEAMS.apply(team, TEAMS.fields.model_validate({"team_alias": None}))
    assert team.team_alias is None
    TEAMS.apply(team, TEAMS.fields.model_validate({"models": None, "metadata": None, "blocked": None}))
    assert (team.models, team.metadata_, team.blocked) == (["a"], {"v": 1}, False)


def test_team_members_are_stored_as_plain_fields_without_nulls() -> None:
    """members_with_roles keeps each member's role (default too) and drops unset emails."""
    team = _team()
    body = {"members_with_roles": [{"user_id": "u1"}, {"user_id": "u2", "role": "admin", "user_email": "e"}]}
    TEAMS.apply(team, TEAMS.fields.model_validate(body))
    assert team.members_with_roles == [
        {"user_id": "u1", "role": "user"},
        {"user_id": "u2", "role": "admin", "user_email": "e"},
    ]


def test_ids_and_body_only_fields_are_not_copied() -> None:
    """A customer's user_id names it and a user's first-key fields belong to the key, not the row."""
    customer = CustomerRow(name="c", customer_id="c")
    CUSTOMERS.apply(customer, CUSTOMERS.fields.model_validate({"user_id": "other", "alias": "a"}))
    assert (customer.customer_id, customer.alias) == ("c", "a")
    user = UserRow(user_id="u")
    body = {"user_id": "u", "auto_create_key": False, "key_alias": "k", "duration": "1h", "teams": ["t"]}
    USERS.apply(user, USERS.fields.model_validate(body))
    assert user.teams == ["t"]


def test_key_null_empties_lists_mappings_and_blocked() -> None:
    """On a key, null sets a list or mapping to empty and blocked to false, and clears the rest."""
    key = _key()
    body = {"key": "hash", "models": None, "metadata": None, "blocked": None, "model_rpm_limit": None}
    apply_key_settings(key, UpdateKeyRequest.model_validate({**body, "key_alias": None}))
    assert (key.models, key.metadata_, key.blocked, key.model_rpm_limit) == ([], {}, False, {})
    assert key.key_alias is None and key.tags == ["x"] and key.updated_at > LONG_AGO


def test_key_duration_sets_expires_from_now_and_null_clears_it() -> None:
    """duration becomes expires (now + duration); a null duration removes the expiry."""
    key = _key()
    apply_key_settings(key, UpdateKeyRequest.model_validate({"key": "hash", "duration": "2h"}))
    assert key.expires is not None
    assert abs(key.expires - (datetime.now(UTC) + timedelta(hours=2))) < timedelta(minutes=1)
    apply_key_settings(key, UpdateKeyRequest.model_validate({"key": "hash", "duration": None}))
    assert key.expires is None


def test_litellm_params_land_on_their_columns() -> None:
    """The credential is encrypted, unknown params merge into extra_params, other columns keep."""
    row = _deployment()
    body = {"api_key": "sk-new", "tpm": 5, "colour": "red", "model_info": {"x": 1}}
    apply_params(row, PartialLitellmParams.model_validate(body), CIPHER)
    assert CIPHER.decrypt(row.api_key_encrypted) == "sk-new"
    assert row.extra_params == {"kept": 1, "colour": "red", "model_info": {"x": 1}}
    assert (row.tpm, row.rpm, row.weight, row.model_info) == (5, 9, 2.0, {})


def test_changing_only_the_provider_keeps_the_upstream_model() -> None:
    """custom_llm_provider alone moves the deployment to that provider with the same model name."""
    row = _deployment()
    apply_params(row, PartialLitellmParams.model_validate({"custom_llm_provider": "mock"}), CIPHER)
    assert (row.provider, row.upstream_model) == ("mock", "gpt-4o")


def test_null_weight_is_a_422_after_the_provider_is_checked() -> None:
    """A null weight is a 422 naming litellm_params.weight; an unsupported provider is a 400 first."""
    with pytest.raises(UnprocessableEntityError) as refused:
        apply_params(_deployment(), PartialLitellmParams.model_validate({"weight": None}), CIPHER)
    assert refused.value.message == "litellm_params.weight may not be null"
    assert refused.value.param == "litellm_params.weight"
    body = {"model": "nowhere/x", "weight": None}
    with pytest.raises(InvalidRequestError):
        apply_params(_deployment(), PartialLitellmParams.model_validate(body), CIPHER)
