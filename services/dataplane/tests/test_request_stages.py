"""Unit tests of the pure request stages: authenticate, authorize_model, the route table and
pick_deployment, over snapshots decoded from protobuf resources."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from hydite.config.v1 import config_pb2 as pb
from hydite_common.credentials import CredentialCipher
from hydite_common.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from hydite_common.keys import hash_key
from hydite_dataplane.authz import authorize_customer, authorize_model, authorize_route
from hydite_dataplane.caller import authenticate
from hydite_dataplane.config.decode import snapshot_from_resources
from hydite_dataplane.config.snapshot import Snapshot
from hydite_dataplane.request import Caller
from hydite_dataplane.router import pick_deployment
from hydite_dataplane.routes import OPERATIONS, ROUTES

ResourceMessage = (
    pb.VirtualKey
    | pb.User
    | pb.Team
    | pb.Organization
    | pb.Customer
    | pb.KeyGroup
    | pb.Deployment
    | pb.Setting
)

CIPHER = CredentialCipher("test-salt")

VALID_KEY = "sk-hydite-valid-key"
BLOCKED_KEY = "sk-hydite-blocked-key"
EXPIRED_KEY = "sk-hydite-expired-key"
FUTURE_KEY = "sk-hydite-future-key"


def resource(name: str, message: ResourceMessage) -> pb.Resource:
    """A named config resource whose Any body packs message (as the control plane's builder does)."""
    packed = pb.Resource(name=name)
    packed.body.Pack(message)
    return packed


def key_resource(key: pb.VirtualKey) -> pb.Resource:
    """A virtual key resource, named by its hash."""
    return resource(key.key_hash, key)


def deployment(deployment_id: str, model_name: str, weight: float = 1.0) -> pb.Resource:
    """A deployment resource of model_name with an encrypted credential."""
    return resource(
        deployment_id,
        pb.Deployment(
            deployment_id=deployment_id,
            model_name=model_name,
            provider="openai",
            upstream_model=model_name,
            api_key_encrypted=CIPHER.encrypt("sk-upstream"),
            weight=weight,
        ),
    )


def snapshot(*resources: pb.Resource) -> Snapshot:
    """A full snapshot at version 1 holding resources."""
    return snapshot_from_resources(1, resources, CIPHER)


# ---------------------------------------------------------------- authenticate


@pytest.fixture(scope="module")
def auth_snapshot() -> Snapshot:
    """Keys that are valid, blocked, expired and expiring in the future."""
    now_ms = int(time.time() * 1000)
    return snapshot(
        key_resource(pb.VirtualKey(key_hash=hash_key(VALID_KEY), key_alias="valid")),
        key_resource(pb.VirtualKey(key_hash=hash_key(BLOCKED_KEY), blocked=True)),
        key_resource(pb.VirtualKey(key_hash=hash_key(EXPIRED_KEY), expires_unix_ms=now_ms - 1)),
        key_resource(
            pb.VirtualKey(
                key_hash=hash_key(FUTURE_KEY), key_alias="future", expires_unix_ms=now_ms + 3_600_000
            )
        ),
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": ""}, {"Authorization": "Bearer "}, {"api-key": ""}],
    ids=["none", "empty-authorization", "empty-bearer", "empty-api-key"],
)
def test_authenticate_missing_key(auth_snapshot: Snapshot, headers: dict[str, str]) -> None:
    """No key at all is a 401 with code missing_api_key."""
    with pytest.raises(AuthenticationError) as info:
        authenticate(headers, auth_snapshot)
    assert info.value.status == 401
    assert info.value.code == "missing_api_key"


def test_authenticate_unknown_key(auth_snapshot: Snapshot) -> None:
    """A key whose hash is not in the snapshot is a 401 invalid_api_key."""
    with pytest.raises(AuthenticationError) as info:
        authenticate({"Authorization": "Bearer sk-hydite-nobody"}, auth_snapshot)
    assert info.value.code == "invalid_api_key"
    assert "sk-hydite-nobody" not in info.value.message


def test_authenticate_blocked_key(auth_snapshot: Snapshot) -> None:
    """A blocked key is a 401 key_blocked."""
    with pytest.raises(AuthenticationError) as info:
        authenticate({"Authorization": f"Bearer {BLOCKED_KEY}"}, auth_snapshot)
    assert info.value.code == "key_blocked"


def test_authenticate_expired_key(auth_snapshot: Snapshot) -> None:
    """A key past its expiry is a 401 key_expired."""
    with pytest.raises(AuthenticationError) as info:
        authenticate({"x-api-key": EXPIRED_KEY}, auth_snapshot)
    assert info.value.code == "key_expired"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {VALID_KEY}"},
        {"api-key": VALID_KEY},
        {"x-api-key": VALID_KEY},
        {"Authorization": VALID_KEY},
    ],
    ids=["bearer", "api-key", "x-api-key", "bare-authorization"],
)
def test_authenticate_valid_key_via_each_header(auth_snapshot: Snapshot, headers: dict[str, str]) -> None:
    """A valid key is accepted from every supported header and returns its hash and settings."""
    caller = authenticate(headers, auth_snapshot)
    assert caller.key_hash == hash_key(VALID_KEY)
    assert caller.key.key_alias == "valid"


def test_authenticate_key_expiring_later_is_valid(auth_snapshot: Snapshot) -> None:
    """A key whose expiry lies in the future is accepted."""
    caller = authenticate({"api-key": FUTURE_KEY}, auth_snapshot)
    assert caller.key.key_alias == "future"


# ---------------------------------------------------------------- authorize_model


@pytest.fixture(scope="module")
def authz_snapshot() -> Snapshot:
    """Three models, teams, key groups and an organization with allowlists."""
    return snapshot(
        deployment("d-gpt-1", "gpt-4o"),
        deployment("d-gpt-2", "gpt-4o"),
        deployment("d-claude", "claude"),
        deployment("d-gemini", "gemini"),
        resource("team-claude", pb.Team(team_id="team-claude", models=["claude"])),
        resource("team-open", pb.Team(team_id="team-open")),
        resource("team-grouped", pb.Team(team_id="team-grouped", key_group="grp-gemini")),
        resource("grp-gpt", pb.KeyGroup(name="grp-gpt", models=["gpt-4o"])),
        resource("grp-gemini", pb.KeyGroup(name="grp-gemini", models=["gemini"])),
        resource("grp-all", pb.KeyGroup(name="grp-all", models=["all-proxy-models"])),
        resource("org-gemini", pb.Organization(organization_id="org-gemini", models=["gemini"])),
    )


def _allowed(key: pb.VirtualKey, model: str, snap: Snapshot) -> bool:
    denied: PermissionDeniedError | None = None
    try:
        authorize_model(Caller.of(snap, "h", key), model)
    except PermissionDeniedError as exc:
        denied = exc
    if denied is None:
        return True
    assert (denied.status, denied.code, denied.param) == (403, "permission_denied", "model")
    return False


def test_authorize_unknown_model(authz_snapshot: Snapshot) -> None:
    """A model without deployments is a 404 model_not_found, even for an unrestricted key."""
    with pytest.raises(NotFoundError) as info:
        authorize_model(Caller.of(authz_snapshot, "h", pb.VirtualKey()), "no-such-model")
    assert info.value.status == 404
    assert info.value.code == "model_not_found"
    assert info.value.param == "model"


def test_authorize_returns_the_model_deployments(authz_snapshot: Snapshot) -> None:
    """An unrestricted key gets every deployment of the model, ordered by id."""
    deployments = authorize_model(Caller.of(authz_snapshot, "h", pb.VirtualKey()), "gpt-4o")
    assert [d.deployment_id for d in deployments] == ["d-gpt-1", "d-gpt-2"]


def test_authorize_key_allowlist(authz_snapshot: Snapshot) -> None:
    """The key's own models list restricts it."""
    key = pb.VirtualKey(models=["gpt-4o"])
    assert _allowed(key, "gpt-4o", authz_snapshot)
    assert not _allowed(key, "claude", authz_snapshot)


def test_authorize_team_allowlist(authz_snapshot: Snapshot) -> None:
    """The team's models list restricts its keys; a team without a list restricts nothing."""
    key = pb.VirtualKey(team_id="team-claude")
    assert _allowed(key, "claude", authz_snapshot)
    assert not _allowed(key, "gpt-4o", authz_snapshot)
    open_key = pb.VirtualKey(team_id="team-open")
    assert _allowed(open_key, "gpt-4o", authz_snapshot)


def test_authorize_key_and_team_must_both_allow(authz_snapshot: Snapshot) -> None:
    """A model must pass the key's list and the team's list."""
    key = pb.VirtualKey(team_id="team-claude", models=["gpt-4o", "claude"])
    assert _allowed(key, "claude", authz_snapshot)
    assert not _allowed(key, "gpt-4o", authz_snapshot)


def test_authorize_key_group_allowlist(authz_snapshot: Snapshot) -> None:
    """The key's key group restricts it."""
    key = pb.VirtualKey(key_group="grp-gpt")
    assert _allowed(key, "gpt-4o", authz_snapshot)
    assert not _allowed(key, "claude", authz_snapshot)


def test_authorize_team_key_group_applies_when_key_has_none(authz_snapshot: Snapshot) -> None:
    """A key without a key group inherits its team's key group."""
    key = pb.VirtualKey(team_id="team-grouped")
    assert _allowed(key, "gemini", authz_snapshot)
    assert not _allowed(key, "gpt-4o", authz_snapshot)
    own_group = pb.VirtualKey(team_id="team-grouped", key_group="grp-gpt")
    assert _allowed(own_group, "gpt-4o", authz_snapshot)
    assert not _allowed(own_group, "gemini", authz_snapshot)


def test_authorize_missing_key_group_denies(authz_snapshot: Snapshot) -> None:
    """A key naming a key group that does not exist may call nothing."""
    key = pb.VirtualKey(key_group="deleted-group")
    for model in ("gpt-4o", "claude", "gemini"):
        assert not _allowed(key, model, authz_snapshot)


@pytest.mark.parametrize("wildcard", ["*", "all-proxy-models"])
def test_authorize_wildcards_allow_all(authz_snapshot: Snapshot, wildcard: str) -> None:
    """'*' and 'all-proxy-models' in an allowlist allow every model."""
    key = pb.VirtualKey(models=[wildcard])
    for model in ("gpt-4o", "claude", "gemini"):
        assert _allowed(key, model, authz_snapshot)


def test_authorize_wildcard_key_group(authz_snapshot: Snapshot) -> None:
    """A key group whose list is 'all-proxy-models' allows every model."""
    key = pb.VirtualKey(key_group="grp-all")
    for model in ("gpt-4o", "claude", "gemini"):
        assert _allowed(key, model, authz_snapshot)


def test_authorize_wildcard_does_not_bypass_other_lists(authz_snapshot: Snapshot) -> None:
    """A wildcard on the key still leaves the team's list in force."""
    key = pb.VirtualKey(models=["*"], team_id="team-claude")
    assert _allowed(key, "claude", authz_snapshot)
    assert not _allowed(key, "gemini", authz_snapshot)


def test_authorize_organization_allowlist(authz_snapshot: Snapshot) -> None:
    """The key's organization's models list restricts it."""
    key = pb.VirtualKey(organization_id="org-gemini")
    assert _allowed(key, "gemini", authz_snapshot)
    assert not _allowed(key, "gpt-4o", authz_snapshot)


# ---------------------------------------------------------------- routes


def _expected_inference_paths(base: str) -> set[str]:
    paths = set()
    for prefix in ("", "/engines/{model}", "/openai/deployments/{model}"):
        paths.add(f"{prefix}{base}")
        paths.add(f"/v1{prefix}{base}")
    return paths


def test_chat_routes_exist_under_every_prefix() -> None:
    """POST chat/completions answers with and without /v1, under /engines and Azure's path."""
    chat = {r.path for r in ROUTES if r.operation == "chat" and r.method == "POST"}
    assert chat == {
        "/chat/completions",
        "/v1/chat/completions",
        "/engines/{model}/chat/completions",
        "/v1/engines/{model}/chat/completions",
        "/openai/deployments/{model}/chat/completions",
        "/v1/openai/deployments/{model}/chat/completions",
    }


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_inference_operation_has_all_routes(operation: str) -> None:
    """Each inference operation has its base path with and without /v1 (and model paths if any)."""
    base, model_in_path = OPERATIONS[operation].path, OPERATIONS[operation].model_in_path
    routes = [r for r in ROUTES if r.operation == operation]
    paths = {r.path for r in routes}
    if model_in_path:
        assert paths == _expected_inference_paths(base)
    else:
        assert paths == {base, f"/v1{base}"}
    for route in routes:
        assert route.method == "POST"
        assert route.auth == "inference"
        assert route.wire_format == ("anthropic" if operation == "messages" else "openai")


def test_routes_are_unique_and_health_is_public() -> None:
    """No method+path appears twice; the probes need no key, deployment health and services do."""
    pairs = [(r.method, r.path) for r in ROUTES]
    assert len(pairs) == len(set(pairs))
    keyed = {r.path for r in ROUTES if r.path.startswith("/health") and r.auth == "inference"}
    assert keyed == {"/health", "/health/services"}
    health = {r.path: r for r in ROUTES if r.path.startswith("/health/") and r.auth == "public"}
    assert set(health) == {
        "/health/liveliness",
        "/health/liveness",
        "/health/readiness",
        "/health/readiness/details",
    }
    for route in health.values():
        assert route.method == "GET"
        assert route.auth == "public"


# ---------------------------------------------------------------- pick_deployment


def test_pick_single_deployment() -> None:
    """With one deployment, that deployment is always chosen."""
    snap = snapshot(deployment("only", "m"))
    (only,) = snap.model_groups["m"]
    rng = random.Random(7)
    for _ in range(20):
        assert pick_deployment([only], rng) is only


def test_pick_respects_weights() -> None:
    """Picks follow the weights: 1:3 gives about a quarter and three quarters."""
    snap = snapshot(deployment("light", "m", weight=1.0), deployment("heavy", "m", weight=3.0))
    deployments = snap.model_groups["m"]
    rng = random.Random(20240601)
    draws = 8000
    counts = Counter(pick_deployment(deployments, rng).deployment_id for _ in range(draws))
    assert set(counts) == {"light", "heavy"}
    assert counts["heavy"] / draws == pytest.approx(0.75, abs=0.025)


def test_pick_small_weight_is_picked_rarely() -> None:
    """A deployment with a tiny weight is picked far less often than one with a large weight."""
    snap = snapshot(
        deployment("a", "m", weight=0.01), deployment("b", "m", weight=10.0), deployment("c", "m")
    )
    rng = random.Random(99)
    counts = Counter(pick_deployment(snap.model_groups["m"], rng).deployment_id for _ in range(5000))
    assert counts["a"] < counts["c"] < counts["b"]
    assert counts["c"] / 5000 == pytest.approx(1.0 / 11.01, abs=0.02)


def test_pick_is_reproducible_with_a_seed() -> None:
    """Two generators with the same seed make the same choices."""
    snap = snapshot(deployment("x", "m", weight=2.0), deployment("y", "m", weight=5.0))
    deployments = snap.model_groups["m"]
    first = [pick_deployment(deployments, random.Random(5)).deployment_id for _ in range(3)]
    rng_a, rng_b = random.Random(11), random.Random(11)
    seq_a = [pick_deployment(deployments, rng_a).deployment_id for _ in range(50)]
    seq_b = [pick_deployment(deployments, rng_b).deployment_id for _ in range(50)]
    assert seq_a == seq_b
    assert len(set(first)) == 1


@pytest.mark.parametrize("owner", ["user", "team", "organization"])
def test_authenticate_blocked_owner_blocks_the_key(owner: str) -> None:
    """A key whose user, team or organization is blocked is refused with a 403 naming the owner."""
    owner_resources = {
        "user": resource("u1", pb.User(user_id="u1", blocked=True)),
        "team": resource("t1", pb.Team(team_id="t1", blocked=True)),
        "organization": resource("o1", pb.Organization(organization_id="o1", blocked=True)),
    }
    key = pb.VirtualKey(key_hash=hash_key(VALID_KEY), user_id="u1", team_id="t1", organization_id="o1")
    snap = snapshot(key_resource(key), owner_resources[owner])
    with pytest.raises(PermissionDeniedError) as caught:
        authenticate({"Authorization": f"Bearer {VALID_KEY}"}, snap)
    assert caught.value.code == f"{owner}_blocked"


@pytest.mark.parametrize(
    ("allowed", "path", "permitted"),
    [
        ([], "/v1/chat/completions", True),
        (["/chat/completions"], "/v1/chat/completions", True),
        (["/v1/chat/completions"], "/chat/completions", True),
        (["/embeddings"], "/v1/chat/completions", False),
        (["llm_api_routes"], "/engines/m/chat/completions", True),
        (["info_routes"], "/v1/chat/completions", False),
        (["info_routes"], "/key/info", True),
    ],
)
def test_allowed_routes(allowed: list[str], path: str, permitted: bool) -> None:
    """A key's allowed_routes takes paths with or without /v1 and LiteLLM's route groups."""
    key = pb.VirtualKey(key_hash="h", allowed_routes=allowed)
    if permitted:
        authorize_route(key, path)
    else:
        with pytest.raises(PermissionDeniedError):
            authorize_route(key, path)


def test_customer_blocked_or_outside_allowlist_is_403() -> None:
    """The request's end user (`user`) may be blocked or limited to some models."""
    snap = snapshot(
        resource("blocked-user", pb.Customer(customer_id="blocked-user", blocked=True)),
        resource("narrow-user", pb.Customer(customer_id="narrow-user", allowed_models=["m1"])),
    )
    authorize_customer(None, "m2")
    authorize_customer(snap.customers.get("unknown-user"), "m2")
    authorize_customer(snap.customers.get("narrow-user"), "m1")
    with pytest.raises(PermissionDeniedError) as blocked:
        authorize_customer(snap.customers.get("blocked-user"), "m1")
    assert blocked.value.code == "customer_blocked"
    with pytest.raises(PermissionDeniedError):
        authorize_customer(snap.customers.get("narrow-user"), "m2")


def test_missing_organization_allows_nothing() -> None:
    """A key naming an organization that no longer exists may call no model (never more than before)."""
    snap = snapshot(deployment("d1", "gpt-4o"))
    with pytest.raises(PermissionDeniedError):
        authorize_model(Caller.of(snap, "h", pb.VirtualKey(key_hash="h", organization_id="gone")), "gpt-4o")


def test_a_team_key_inherits_its_teams_organization() -> None:
    """A key without an organization of its own falls under its team's (else its user's): that
    organization's allowlist applies, and its block refuses the key."""
    snap = snapshot(
        deployment("d1", "gpt-4o"),
        deployment("d2", "claude"),
        resource("o1", pb.Organization(organization_id="o1", models=["gpt-4o"])),
        resource("o2", pb.Organization(organization_id="o2", blocked=True)),
        resource("t1", pb.Team(team_id="t1", organization_id="o1")),
        resource("u1", pb.User(user_id="u1", organization_id="o1")),
        resource("t2", pb.Team(team_id="t2", organization_id="o2")),
        key_resource(pb.VirtualKey(key_hash=hash_key(VALID_KEY), team_id="t2")),
    )
    for key in (pb.VirtualKey(team_id="t1"), pb.VirtualKey(user_id="u1")):
        assert Caller.of(snap, "h", key).organization_id == "o1"
        assert _allowed(key, "gpt-4o", snap)
        assert not _allowed(key, "claude", snap)
    with pytest.raises(PermissionDeniedError) as blocked:
        authenticate({"Authorization": f"Bearer {VALID_KEY}"}, snap)
    assert blocked.value.code == "organization_blocked"


def test_a_users_models_restrict_every_key_of_the_user() -> None:
    """The user's own allowlist applies to each of their keys, beside the key's."""
    snap = snapshot(
        deployment("d1", "gpt-4o"),
        deployment("d2", "claude"),
        resource("u1", pb.User(user_id="u1", models=["claude"])),
    )
    assert _allowed(pb.VirtualKey(user_id="u1"), "claude", snap)
    assert not _allowed(pb.VirtualKey(user_id="u1"), "gpt-4o", snap)
    assert not _allowed(pb.VirtualKey(user_id="u1", models=["gpt-4o"]), "gpt-4o", snap)


def test_aliases_of_the_team_then_the_key_then_the_user_name_the_model_served() -> None:
    """A requested name maps through the team's model_aliases, else the key's aliases, else its
    user's (LiteLLM puts a team's over a key's); the model it names is what the allowlists check."""
    snap = snapshot(
        deployment("d-team", "team-target"),
        deployment("d-key", "key-target"),
        deployment("d-user", "user-target"),
        resource("t1", pb.Team(team_id="t1", model_aliases={"a": "team-target"})),
        resource(
            "u1", pb.User(user_id="u1", aliases={"a": "user-target", "b": "user-target", "c": "user-target"})
        ),
    )
    aliases = {"a": "key-target", "b": "key-target"}
    key = pb.VirtualKey(key_hash="h", team_id="t1", user_id="u1", aliases=aliases)
    served = {name: authorize_model(Caller.of(snap, "h", key), name)[0].deployment_id for name in "abc"}
    assert served == {"a": "d-team", "b": "d-key", "c": "d-user"}
    narrow = pb.VirtualKey(key_hash="h", models=["b"], aliases=aliases)
    with pytest.raises(PermissionDeniedError):
        authorize_model(Caller.of(snap, "h", narrow), "b")
