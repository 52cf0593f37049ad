"""Unit tests of hydite_dataplane.config.decode: protobuf resources -> immutable Snapshot."""

from __future__ import annotations

import orjson
import pytest

from hydite.config.v1 import config_pb2 as pb
from hydite_common import config_types as types
from hydite_common.credentials import CredentialCipher, CredentialDecryptError
from hydite_common.keys import hash_key
from hydite_common.pricing import UNPRICED, list_price
from hydite_dataplane.config.decode import apply_delta, snapshot_from_resources
from hydite_dataplane.config.snapshot import Snapshot

ResourceMessage = (
    pb.VirtualKey
    | pb.User
    | pb.Team
    | pb.Organization
    | pb.Customer
    | pb.KeyGroup
    | pb.Deployment
    | pb.Setting
    | pb.Limits
)

SALT = "decode-test-salt"
CIPHER = CredentialCipher(SALT)
KEY_A = hash_key("sk-hydite-a")
KEY_B = hash_key("sk-hydite-b")


def resource(name: str, message: ResourceMessage) -> pb.Resource:
    """A named config resource whose Any body packs message (as the control plane's builder does)."""
    packed = pb.Resource(name=name)
    packed.body.Pack(message)
    return packed


def deployment_message(
    deployment_id: str,
    model_name: str,
    *,
    upstream_model: str = "gpt-4o",
    api_key: str = "sk-upstream",
    cipher: CredentialCipher = CIPHER,
    **fields: object,
) -> pb.Deployment:
    """A deployment whose credential is encrypted with cipher."""
    message = pb.Deployment(
        deployment_id=deployment_id,
        model_name=model_name,
        provider="openai",
        upstream_model=upstream_model,
        api_key_encrypted=cipher.encrypt(api_key),
    )
    for name, value in fields.items():
        setattr(message, name, value)
    return message


def full_resources() -> list[pb.Resource]:
    """One resource of every kind, with two deployments of one model and one of another."""
    return [
        resource(KEY_A, pb.VirtualKey(key_hash=KEY_A, key_alias="a", models=["gpt-4o"])),
        resource(KEY_B, pb.VirtualKey(key_hash=KEY_B, key_alias="b", team_id="t1")),
        resource("u1", pb.User(user_id="u1", user_role="internal_user")),
        resource("t1", pb.Team(team_id="t1", models=["gpt-4o"], key_group="g1")),
        resource("o1", pb.Organization(organization_id="o1", models=["*"])),
        resource("c1", pb.Customer(customer_id="c1", allowed_models=["gpt-4o"])),
        resource("g1", pb.KeyGroup(name="g1", models=["gpt-4o", "claude"])),
        resource("max_budget", pb.Setting(name="max_budget", value_json=b"100.5")),
        resource(
            "d2",
            deployment_message(
                "d2",
                "gpt-4o",
                api_key="sk-upstream-two",
                api_base="https://eu.example/v1",
                weight=3.0,
                timeout_seconds=12.5,
                stream_timeout_seconds=40.0,
                input_cost_per_token=1e-6,
                output_cost_per_token=2e-6,
                extra_params_json=orjson.dumps(
                    {"seed": 1, "service_tier": "flex", "cache_read_input_token_cost": 5e-7}
                ),
                model_info_json=orjson.dumps({"mode": "chat"}),
            ),
        ),
        resource("d1", deployment_message("d1", "gpt-4o", upstream_model="openai/gpt-4o")),
        resource(
            "d3", deployment_message("d3", "claude", upstream_model="claude-haiku-4-5", provider="anthropic")
        ),
    ]


@pytest.fixture
def base() -> Snapshot:
    """A full snapshot at version 5."""
    return snapshot_from_resources(5, full_resources(), CIPHER)


def test_full_snapshot_collections(base: Snapshot) -> None:
    """Every resource lands in its collection under its resource name."""
    assert base.version == 5
    assert set(base.keys) == {KEY_A, KEY_B}
    assert base.key(KEY_A) == pb.VirtualKey(key_hash=KEY_A, key_alias="a", models=["gpt-4o"])
    assert (key_b := base.key(KEY_B)) is not None and key_b.team_id == "t1"
    assert base.users["u1"].user_role == "internal_user"
    assert list(base.teams["t1"].models) == ["gpt-4o"]
    assert base.teams["t1"].key_group == "g1"
    assert list(base.organizations["o1"].models) == ["*"]
    assert list(base.customers["c1"].allowed_models) == ["gpt-4o"]
    assert list(base.key_groups["g1"].models) == ["gpt-4o", "claude"]
    assert base.settings["max_budget"] == b"100.5"
    assert set(base.deployments) == {"d1", "d2", "d3"}


def test_full_snapshot_deployment_fields(base: Snapshot) -> None:
    """A deployment is decoded with its credential decrypted and its JSON fields parsed."""
    d2 = base.deployments["d2"]
    assert d2.deployment_id == "d2"
    assert d2.model_name == "gpt-4o"
    assert d2.provider == "openai"
    assert d2.api_key == "sk-upstream-two"
    assert d2.api_base == "https://eu.example/v1"
    assert d2.weight == 3.0
    assert d2.timeout_seconds == 12.5
    assert d2.stream_timeout_seconds == 40.0
    rates = d2.price.default.base
    assert (d2.price.source, rates.input, rates.output, rates.cache_read) == ("deployment", 1e-6, 2e-6, 5e-7)
    assert d2.extra_params == {"seed": 1, "service_tier": "flex"}  # price settings never reach the provider
    assert d2.model_info == {"mode": "chat"}
    assert "sk-upstream-two" not in repr(d2)


def test_full_snapshot_deployment_defaults(base: Snapshot) -> None:
    """Without explicit prices, weight or JSON fields, the model's list price, weight 1 and {} apply."""
    d1 = base.deployments["d1"]
    assert d1.api_key == "sk-upstream"
    assert d1.price == list_price("openai", "gpt-4o").price
    assert (d1.price.source, d1.price.default.base.input) == ("genai-prices", 2.5e-6)
    assert d1.weight == 1.0
    assert d1.extra_params == {}
    assert d1.model_info == {}
    assert d1.api_base == ""


def test_full_snapshot_model_groups(base: Snapshot) -> None:
    """model_groups maps each public model name to its deployments, sorted by id."""
    assert set(base.model_groups) == {"gpt-4o", "claude"}
    assert [d.deployment_id for d in base.model_groups["gpt-4o"]] == ["d1", "d2"]
    assert base.model_groups["claude"] == (base.deployments["d3"],)
    claude = base.model_groups["claude"][0].price
    assert (claude.source, claude.model, claude.default.base.input) == (
        "genai-prices",
        "claude-haiku-4-5",
        1e-6,
    )


def test_empty_credential_and_unknown_price() -> None:
    """A deployment without a credential decodes to an empty key; an unknown model is unpriced
    (billed 0 with source "unknown", never silently free)."""
    snap = snapshot_from_resources(
        1,
        [resource("local", deployment_message("local", "llama", upstream_model="llama3", api_key=""))],
        CIPHER,
    )
    assert snap.deployments["local"].api_key == ""
    assert snap.deployments["local"].price == UNPRICED


def test_non_object_json_fields_become_empty() -> None:
    """extra_params_json or model_info_json that is not a JSON object is treated as empty."""
    message = deployment_message("d", "m", extra_params_json=b"[1, 2]", model_info_json=b'"text"')
    snap = snapshot_from_resources(1, [resource("d", message)], CIPHER)
    assert snap.deployments["d"].extra_params == {}
    assert snap.deployments["d"].model_info == {}


def test_unknown_type_url_is_ignored() -> None:
    """A resource of a type this build does not know is skipped in snapshots and deltas."""
    unknown = resource("future-thing", pb.Limits(rpm_limit=5))
    assert unknown.body.type_url not in types.RESOURCE_MESSAGES
    foreign = pb.Resource(name="foreign")
    foreign.body.type_url = "type.googleapis.com/hydite.config.v2.Guardrail"
    foreign.body.value = b"\x0a\x03abc"
    snap = snapshot_from_resources(
        3, [unknown, foreign, resource(KEY_A, pb.VirtualKey(key_hash=KEY_A))], CIPHER
    )
    assert set(snap.keys) == {KEY_A}
    for collection in (snap.users, snap.teams, snap.deployments, snap.settings, snap.key_groups):
        assert len(collection) == 0
    batch = pb.DeltaBatch(
        from_version=3,
        version=4,
        deltas=[
            pb.Delta(type_url=foreign.body.type_url, upserts=[foreign], removed_names=[KEY_A]),
        ],
    )
    after = apply_delta(snap, batch, CIPHER)
    assert after.version == 4
    assert set(after.keys) == {KEY_A}


def test_apply_delta_upsert_and_removal(base: Snapshot) -> None:
    """A delta adds, replaces and removes resources and recomputes model_groups."""
    batch = pb.DeltaBatch(
        from_version=5,
        version=6,
        nonce="n1",
        deltas=[
            pb.Delta(
                type_url=types.DEPLOYMENT,
                upserts=[
                    resource("d4", deployment_message("d4", "claude", api_key="sk-four")),
                    resource("d2", deployment_message("d2", "gemini", api_key="sk-two-new")),
                ],
                removed_names=["d1"],
            ),
            pb.Delta(type_url=types.VIRTUAL_KEY, removed_names=[KEY_B]),
            pb.Delta(
                type_url=types.TEAM,
                upserts=[resource("t2", pb.Team(team_id="t2"))],
                removed_names=["no-such-team"],
            ),
            pb.Delta(
                type_url=types.SETTING,
                upserts=[resource("max_budget", pb.Setting(name="max_budget", value_json=b"7"))],
            ),
        ],
    )
    after = apply_delta(base, batch, CIPHER)
    assert after.version == 6
    assert set(after.deployments) == {"d2", "d3", "d4"}
    assert after.deployments["d4"].api_key == "sk-four"
    assert after.deployments["d2"].api_key == "sk-two-new"
    assert set(after.keys) == {KEY_A}
    assert set(after.teams) == {"t1", "t2"}
    assert after.settings["max_budget"] == b"7"
    assert set(after.model_groups) == {"claude", "gemini"}
    assert [d.deployment_id for d in after.model_groups["claude"]] == ["d3", "d4"]
    assert [d.deployment_id for d in after.model_groups["gemini"]] == ["d2"]
    assert after.keys[KEY_A] is base.keys[KEY_A]


def test_apply_empty_delta_moves_version_only(base: Snapshot) -> None:
    """A delta without changes only advances the version."""
    after = apply_delta(base, pb.DeltaBatch(from_version=5, version=9), CIPHER)
    assert after.version == 9
    assert set(after.deployments) == set(base.deployments)
    assert after.model_groups == base.model_groups


@pytest.mark.parametrize("from_version", [0, 4, 6])
def test_apply_delta_wrong_from_version(base: Snapshot, from_version: int) -> None:
    """A delta that does not start at the snapshot's version is refused with ValueError."""
    batch = pb.DeltaBatch(
        from_version=from_version,
        version=10,
        deltas=[pb.Delta(type_url=types.VIRTUAL_KEY, removed_names=[KEY_A])],
    )
    with pytest.raises(ValueError, match="delta starts at"):
        apply_delta(base, batch, CIPHER)
    assert KEY_A in base.keys


def test_other_salt_raises_in_full_snapshot() -> None:
    """A deployment encrypted under another salt key makes the snapshot fail (to be NACKed)."""
    other = CredentialCipher("some-other-salt")
    resources = [resource("d", deployment_message("d", "m", cipher=other))]
    with pytest.raises(CredentialDecryptError):
        snapshot_from_resources(1, resources, CIPHER)


def test_other_salt_raises_in_delta(base: Snapshot) -> None:
    """A delta with a deployment encrypted under another salt key fails and leaves base as is."""
    other = CredentialCipher("some-other-salt")
    batch = pb.DeltaBatch(
        from_version=5,
        version=6,
        deltas=[
            pb.Delta(
                type_url=types.DEPLOYMENT,
                upserts=[resource("d9", deployment_message("d9", "m", cipher=other))],
                removed_names=["d1"],
            )
        ],
    )
    with pytest.raises(CredentialDecryptError):
        apply_delta(base, batch, CIPHER)
    assert base.version == 5
    assert set(base.deployments) == {"d1", "d2", "d3"}


def test_old_snapshot_unchanged_after_delta(base: Snapshot) -> None:
    """Applying a delta builds a new snapshot and leaves the old object exactly as it was."""
    keys_before = dict(base.keys.items())
    deployments_before = dict(base.deployments.items())
    groups_before = dict(base.model_groups.items())
    settings_before = dict(base.settings.items())
    batch = pb.DeltaBatch(
        from_version=5,
        version=6,
        deltas=[
            pb.Delta(
                type_url=types.DEPLOYMENT,
                upserts=[resource("d5", deployment_message("d5", "gpt-4o"))],
                removed_names=["d3"],
            ),
            pb.Delta(
                type_url=types.VIRTUAL_KEY,
                upserts=[resource(KEY_A, pb.VirtualKey(key_hash=KEY_A, blocked=True))],
                removed_names=[KEY_B],
            ),
            pb.Delta(type_url=types.SETTING, removed_names=["max_budget"]),
        ],
    )
    after = apply_delta(base, batch, CIPHER)
    assert after is not base
    assert base.version == 5
    assert dict(base.keys.items()) == keys_before
    before_key, after_key = base.key(KEY_A), after.key(KEY_A)
    assert before_key is not None and not before_key.blocked
    assert after_key is not None and after_key.blocked
    assert dict(base.deployments.items()) == deployments_before
    assert dict(base.model_groups.items()) == groups_before
    assert dict(base.settings.items()) == settings_before
    assert "max_budget" not in after.settings
    assert [d.deployment_id for d in after.model_groups["gpt-4o"]] == ["d1", "d2", "d5"]
    assert "claude" not in after.model_groups
