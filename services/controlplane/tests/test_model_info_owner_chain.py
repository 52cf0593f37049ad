"""/model/info shows a key the models its whole owner chain allows, as the data plane enforces."""

from __future__ import annotations

import httpx

from hydite_common.devstack import Stack
from tests.harness import ok_get, ok_post, unique


def _model(admin: httpx.Client) -> str:
    name = unique("chain-model")
    ok_post(admin, "/model/new", {"model_name": name, "litellm_params": {"model": "mock/chain"}})
    return name


def test_user_models_and_user_organization_restrict_model_info(stack: Stack, admin: httpx.Client) -> None:
    """A key without models of a user allowed [a, b] in an organization allowed [a] sees only model a."""
    a, b, c = _model(admin), _model(admin), _model(admin)
    org, user = unique("chain-org"), unique("chain-user")
    ok_post(admin, "/organization/new", {"organization_id": org, "models": [a, c]})
    ok_post(
        admin,
        "/user/new",
        {"user_id": user, "models": [a, b], "organization_id": org, "auto_create_key": False},
    )
    key = ok_post(admin, "/key/generate", {"user_id": user})["key"]
    with httpx.Client(base_url=stack.base_url, headers={"Authorization": f"Bearer {key}"}) as client:
        shown = {d["model_name"] for d in ok_get(client, "/model/info")["data"]}
    assert shown & {a, b, c} == {a}
