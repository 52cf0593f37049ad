"""A script written for LiteLLM's proxy runs unchanged against Hydite: it sends the request bodies
LiteLLM's documentation and its own end-to-end tests send for organizations, teams, their members
and models (with their nulls and LiteLLM-only fields), reads the answers the way they read them,
and calls the models with the openai SDK right after each admin call returns."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import openai

from hydite_common.devstack import Stack
from tests.fakes.openai_server import FAKE_USAGE, FakeOpenAI
from tests.harness import FAKE_UPSTREAM_KEY, wait_until

HELLO = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hello!"},
]


class Proxy:
    """The script's view of the proxy: POST/GET/PATCH/DELETE that must answer 200, as its
    helpers raise on anything else."""

    def __init__(self, stack: Stack, key: str) -> None:
        self.base_url = stack.base_url
        self.http = httpx.Client(
            base_url=stack.base_url,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            timeout=30,
        )

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        """The JSON of a 200 answer."""
        response = self.http.request(method, path, json=body, params=params or None)
        assert response.status_code == 200, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def status(self, method: str, path: str, body: dict[str, Any]) -> int:
        """The status of a call the script expects to be refused."""
        return self.http.request(method, path, json=body).status_code

    def chat(self, key: str, model: str) -> Any:
        """One chat completion through the openai SDK with this key."""
        client = openai.OpenAI(base_url=self.base_url, api_key=key, max_retries=0)
        return client.chat.completions.with_raw_response.create(model=model, messages=HELLO)  # type: ignore[arg-type]


def test_a_litellm_team_and_organization_script_runs_unchanged(
    stack: Stack, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """Organization, team with model aliases, members by id and email, member budgets, a team's
    own model, model groups and billing, then deletion, as a LiteLLM script does them."""
    _, fake_base = fake_openai
    proxy = Proxy(stack, stack.config.master_key)
    run = uuid.uuid4().hex[:8]
    public_model = f"gpt-3.5-turbo-{run}"

    # Models as in LiteLLM's docs: prices given in model_info, as the UI and config.yaml do.
    model_id = f"12345_{uuid.uuid4()}"
    added = proxy.call(
        "POST",
        "/model/new",
        {
            "model_name": public_model,
            "litellm_params": {
                "model": "openai/gpt-3.5-turbo", "api_base": fake_base, "api_key": FAKE_UPSTREAM_KEY,
            },
            "model_info": {"id": model_id, "mode": "chat", "input_cost_per_token": 0.0000015,
                           "output_cost_per_token": 0.000002, "max_input_tokens": 16385},
        },
    )  # fmt: skip
    assert added["model_id"] == model_id

    # /organization/new as in LiteLLM's docs and tests (max_budget may be None).
    org = proxy.call(
        "POST",
        "/organization/new",
        {"organization_alias": f"Organization: {uuid.uuid4()}", "models": [public_model], "max_budget": None},
    )
    org_id = org["organization_id"]
    orgs = proxy.call("GET", "/organization/list")
    assert len(orgs) != 0
    mine = next(o for o in orgs if o["organization_id"] == org_id)
    assert "litellm_budget_table" in mine and mine["members"] == []

    # Users as LiteLLM's tests make them, then a team with an admin, a member named by email and
    # model aliases (test_team_alias), and LiteLLM's other team fields left null.
    admin_user = f"{uuid.uuid4()}"
    new_user = {"models": [public_model], "duration": None, "max_budget": None, "budget_duration": None}
    proxy.call("POST", "/user/new", {**new_user, "user_id": admin_user, "user_email": None})
    normal_user = f"{uuid.uuid4()}"
    normal_email = f"{normal_user}@berri.ai"
    proxy.call("POST", "/user/new", {**new_user, "user_id": normal_user, "user_email": normal_email})
    team_data = proxy.call(
        "POST",
        "/team/new",
        {
            "team_alias": "my-new-team",
            "organization_id": org_id,
            "members_with_roles": [{"role": "admin", "user_id": admin_user},
                                   {"role": "user", "user_email": normal_email}],
            "model_aliases": {"cheap-model": public_model},
            "models": None, "metadata": None, "tpm_limit": None, "rpm_limit": None, "max_budget": None,
            "budget_duration": None, "tags": None, "guardrails": None, "team_member_permissions": None,
        },
    )  # fmt: skip
    team_id = team_data["team_id"]
    user_in_team = any(m["user_email"] == normal_email for m in team_data["members_with_roles"])
    assert user_in_team, team_data["members_with_roles"]
    assert all(m["user_id"] for m in team_data["members_with_roles"])

    # /team/member_add: a list of new users by id (test_team_update_sc_2), one by email with a
    # budget in the team (test_team_member_add_email).
    members = [{"role": "user", "user_id": f"krrish_{uuid.uuid4()}@berri.ai"} for _ in range(3)]
    proxy.call("POST", "/team/member_add", {"team_id": team_id, "member": members})
    email_member = f"krrish{uuid.uuid4()}@berri.ai"
    added = proxy.call(
        "POST",
        "/team/member_add",
        {
            "team_id": team_id,
            "member": {"role": "user", "user_email": email_member},
            "max_budget_in_team": 100.0,
        },
    )
    assert [m["litellm_budget_table"]["max_budget"] for m in added["updated_team_memberships"]] == [100.0]
    team_info = proxy.call("GET", "/team/info", team_id=team_id)
    assert len(team_info["team_info"]["members_with_roles"]) == 6

    # /team/update answers {team_id, data}; the rest of the team is unchanged (test_team_update_sc_2).
    new_team_data = proxy.call("POST", "/team/update", {"team_id": team_id, "team_alias": "my-new-team-2"})
    assert new_team_data["data"]["team_alias"] == "my-new-team-2"
    for k, v in new_team_data["data"].items():
        if k not in ("members_with_roles", "team_alias", "created_at", "updated_at"):
            assert v == team_data[k], k

    # /team/member_update as test_users_in_team_budget sends it; the budget shows in team_memberships.
    proxy.call(
        "POST",
        "/team/member_update",
        {"team_id": team_id, "user_id": normal_user, "max_budget_in_team": 0.0000001},
    )
    memberships = proxy.call("GET", "/team/info", team_id=team_id)["team_memberships"]
    budgets = {m["user_id"]: m["litellm_budget_table"]["max_budget"] for m in memberships}
    assert budgets[normal_user] == 0.0000001

    # A team key calls the alias (test_team_alias): the key lists the model the alias names.
    key_gen = proxy.call(
        "POST",
        "/key/generate",
        {
            "models": [public_model],
            "duration": None,
            "max_budget": None,
            "budget_duration": None,
            "team_id": team_id,
        },
    )
    key = key_gen["key"]
    answer = proxy.chat(key, "cheap-model")
    assert answer.headers["x-hydite-deployment"] == model_id

    # The call is billed at the model_info prices and lands in /spend/logs.
    request_id = answer.headers["x-request-id"]

    def logged() -> Any:
        return next(
            (r for r in proxy.call("GET", "/spend/logs", api_key=key) if r["request_id"] == request_id), None
        )

    row = wait_until(logged, timeout=10.0, interval=0.05)
    assert (
        abs(
            row["spend"]
            - (FAKE_USAGE["prompt_tokens"] * 0.0000015 + FAKE_USAGE["completion_tokens"] * 0.000002)
        )
        < 1e-12
    )

    # The team admin adds the team's own model (LiteLLM's team_model_add doc); another key may not.
    admin_key = proxy.call("POST", "/key/generate", {"user_id": admin_user, "team_id": team_id})["key"]
    team_admin = Proxy(stack, admin_key)
    team_model = {
        "model_name": "my-team-model",
        "litellm_params": {"model": "openai/gpt-4o", "custom_llm_provider": "openai",
                           "api_key": FAKE_UPSTREAM_KEY, "api_base": fake_base,
                           "api_version": "2023-12-01-preview"},
        "model_info": {"team_id": team_id},
    }  # fmt: skip
    outsider = Proxy(stack, proxy.call("POST", "/key/generate", {})["key"])
    assert outsider.status("POST", "/model/new", team_model) == 403
    team_model_id = team_admin.call("POST", "/model/new", team_model)["model_id"]
    assert proxy.chat(key, "my-team-model").headers["x-hydite-deployment"] == team_model_id

    # /model_group/info and /v2/model/info as a team key sees them (test_get_personal_models_for_user).
    team_key = Proxy(stack, key)
    groups = {g["model_group"]: g for g in team_key.call("GET", "/model_group/info")["data"]}
    assert (
        groups[public_model]["providers"] == ["openai"] and groups[public_model]["max_input_tokens"] == 16385
    )
    assert groups[public_model]["input_cost_per_token"] == 0.0000015 and "my-team-model" in groups
    v2 = team_key.call("GET", "/v2/model/info")
    assert {m["model_name"] for m in v2["data"]} == {public_model, "my-team-model"} and v2["total_count"] == 2
    assert "my-team-model" not in {
        g["model_group"] for g in outsider.call("GET", "/model_group/info")["data"]
    }

    # /team/member_delete by email (test_member_delete[user_email]).
    after_delete = proxy.call("POST", "/team/member_delete", {"team_id": team_id, "user_email": normal_email})
    assert normal_email not in [m["user_email"] for m in after_delete["members_with_roles"]]

    # Organization members: add (by id, with a budget), PATCH member_update, DELETE member_delete.
    member = {"role": "internal_user", "user_id": normal_user}
    org_added = proxy.call(
        "POST", "/organization/member_add",
        {"organization_id": org_id, "member": member, "max_budget_in_organization": 100.0},
    )  # fmt: skip
    assert org_added["updated_organization_memberships"][0]["user_role"] == "internal_user"
    patched = proxy.call(
        "PATCH",
        "/organization/member_update",
        {"organization_id": org_id, "user_email": normal_email, "role": "org_admin"},
    )
    assert patched["user_role"] == "org_admin"
    info = proxy.call("GET", "/organization/info", organization_id=org_id)
    assert [m["user_id"] for m in info["members"]] == [normal_user] and info["teams"][0]["team_id"] == team_id
    proxy.call("DELETE", "/organization/member_delete", {"organization_id": org_id, "user_id": normal_user})

    # Clean up as LiteLLM's scripts do: the team (its keys go with it), the model, the organization.
    proxy.call("POST", "/team/delete", {"team_ids": [team_id]})
    assert proxy.http.get("/team/info", params={"team_id": team_id}).status_code == 404
    proxy.call("POST", "/model/delete", {"id": model_id})
    proxy.call("DELETE", "/organization/delete", {"organization_ids": [org_id]})
    assert proxy.http.get("/organization/info", params={"organization_id": org_id}).status_code == 404
