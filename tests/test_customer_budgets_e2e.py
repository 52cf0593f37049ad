"""Budgets (/budget/*) and end users under both of LiteLLM's names (/customer/* and /end_user/*),
through the real stack: the bodies LiteLLM's docs and tests/test_end_users.py send, budgets linked
from customers, keys and teams, and an end user blocked on the data plane."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from hydite_common.devstack import Stack
from tests.harness import ok_get, ok_post, unique


@pytest.fixture(scope="module")
def model(admin: httpx.Client) -> str:
    """A mock model of this module's own."""
    name = unique("budget-mock")
    ok_post(admin, "/model/new", {"model_name": name, "litellm_params": {"model": f"mock/{name}"}})
    return name


def _status(response: httpx.Response) -> tuple[int, Any]:
    return response.status_code, response.json()


def test_budget_new_info_update_list_delete(admin: httpx.Client) -> None:
    """A budget goes through LiteLLM's /budget/new, /budget/info (POST, and GET), /budget/update,
    /budget/list and /budget/delete {"id"}; a budget_duration starts its first period."""
    budget_id = unique("free-tier")
    created = ok_post(admin, "/budget/new", {"budget_id": budget_id, "tpm_limit": 2})
    assert (created["budget_id"], created["tpm_limit"], created["budget_reset_at"]) == (budget_id, 2, None)
    timed = ok_post(admin, "/budget/new", {"max_budget": 5, "budget_duration": "30d", "model_max_budget": {}})
    assert timed["budget_id"] and timed["budget_reset_at"] is not None
    assert _status(admin.post("/budget/new", json={"budget_id": budget_id}))[0] == 409

    listed = ok_post(admin, "/budget/info", {"budgets": [budget_id, timed["budget_id"], unique("missing")]})
    assert sorted(b["budget_id"] for b in listed) == sorted([budget_id, timed["budget_id"]])
    assert ok_get(admin, "/budget/info", budget_id=budget_id)["tpm_limit"] == 2

    updated = ok_post(admin, "/budget/update", {"budget_id": budget_id, "rpm_limit": 7, "tpm_limit": None})
    assert (updated["rpm_limit"], updated["tpm_limit"]) == (7, None)
    assert _status(admin.post("/budget/update", json={"rpm_limit": 1}))[0] == 400
    assert (
        _status(admin.post("/budget/update", json={"budget_id": unique("missing"), "rpm_limit": 1}))[0] == 404
    )
    assert budget_id in {b["budget_id"] for b in ok_get(admin, "/budget/list")}

    assert ok_post(admin, "/budget/delete", {"id": budget_id})["budget_id"] == budget_id
    assert admin.get("/budget/info", params={"budget_id": budget_id}).status_code == 404
    assert _status(admin.post("/budget/delete", json={"id": budget_id}))[0] == 404


def test_end_user_with_a_budget_shows_it_as_litellm_does(admin: httpx.Client) -> None:
    """LiteLLM's test_end_users flow: a budget, then /end_user/new with budget_id (and
    allowed_model_region/default_model null); /end_user/info?end_user_id= and /customer/list embed
    the budget as litellm_budget_table."""
    budget_id = unique("free-tier")
    ok_post(admin, "/budget/new", {"budget_id": budget_id, "tpm_limit": 2})
    end_user = unique("end-user")
    body = {"user_id": end_user, "allowed_model_region": None, "default_model": None, "budget_id": budget_id}
    created = ok_post(admin, "/end_user/new", body)
    assert created["budget_id"] == budget_id
    assert created["litellm_budget_table"]["tpm_limit"] == 2
    info = ok_get(admin, "/end_user/info", end_user_id=end_user)
    assert info["litellm_budget_table"]["budget_id"] == budget_id
    assert ok_get(admin, "/customer/info", user_id=end_user) == info
    listed = {c["user_id"]: c for c in ok_get(admin, "/customer/list")}
    assert listed[end_user]["litellm_budget_table"]["tpm_limit"] == 2

    ok_post(admin, "/budget/update", {"budget_id": budget_id, "rpm_limit": 9})
    assert ok_get(admin, "/end_user/info", end_user_id=end_user)["litellm_budget_table"]["rpm_limit"] == 9

    linked = admin.post("/budget/delete", json={"id": budget_id})
    assert linked.status_code == 409, linked.text
    unlinked = ok_post(admin, "/end_user/update", {"user_id": end_user, "budget_id": None, "alias": "Ada"})
    assert (unlinked["budget_id"], unlinked["alias"], unlinked["litellm_budget_table"]) == (None, "Ada", None)
    ok_post(admin, "/budget/delete", {"id": budget_id})


def test_customer_fields_of_litellm_are_kept_and_checked(admin: httpx.Client, model: str) -> None:
    """/customer/new keeps allowed_model_region, default_model (a model the gateway serves) and
    spend; its own max_budget shows as its litellm_budget_table; max_budget with budget_id, an
    unknown default_model or an unknown budget are refused."""
    customer = unique("customer")
    body = {
        "user_id": customer,
        "max_budget": 5,
        "allowed_model_region": "eu",
        "default_model": model,
        "spend": 1.5,
    }
    created = ok_post(admin, "/customer/new", body)
    assert (created["allowed_model_region"], created["default_model"], created["spend"]) == ("eu", model, 1.5)
    assert (
        created["litellm_budget_table"]["max_budget"] == 5
        and created["litellm_budget_table"]["budget_id"] is None
    )
    again = ok_post(
        admin, "/customer/update", {"user_id": customer, "allowed_model_region": None, "blocked": None}
    )
    assert "allowed_model_region" not in again and again["blocked"] is False

    budget_id = ok_post(admin, "/budget/new", {})["budget_id"]
    both = admin.post("/customer/new", json={"user_id": unique("c"), "max_budget": 1, "budget_id": budget_id})
    assert both.status_code == 422, both.text
    unknown_model = admin.post(
        "/customer/new", json={"user_id": unique("c"), "default_model": unique("nope")}
    )
    assert unknown_model.status_code == 422 and unknown_model.json()["error"]["param"] == "default_model"
    unknown_budget = admin.post("/customer/new", json={"user_id": unique("c"), "budget_id": unique("nope")})
    assert unknown_budget.status_code == 400 and unknown_budget.json()["error"]["param"] == "budget_id"
    deleted = ok_post(admin, "/customer/delete", {"user_ids": [customer]})
    assert deleted["deleted_customers"] == [customer]


def test_keys_and_teams_link_budgets(admin: httpx.Client) -> None:
    """A key (/key/generate, /key/update) and a team (/team/new) link a budget by budget_id; a
    linked budget cannot be deleted; an unknown one is a 400."""
    budget_id = ok_post(admin, "/budget/new", {"max_budget": 3})["budget_id"]
    key = ok_post(admin, "/key/generate", {"budget_id": budget_id})
    assert ok_get(admin, "/key/info", key=key["key"])["info"]["budget_id"] == budget_id
    team = ok_post(admin, "/team/new", {"budget_id": budget_id})
    assert ok_get(admin, "/team/info", team_id=team["team_id"])["team_info"]["budget_id"] == budget_id
    assert admin.post("/budget/delete", json={"id": budget_id}).status_code == 409
    ok_post(admin, "/key/update", {"key": key["key"], "budget_id": None})
    assert admin.post("/budget/delete", json={"id": budget_id}).status_code == 409
    ok_post(admin, "/team/update", {"team_id": team["team_id"], "budget_id": None})
    ok_post(admin, "/budget/delete", {"id": budget_id})
    for path in ("/key/generate", "/team/new"):
        refused = admin.post(path, json={"budget_id": unique("nope")})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "budget_id", refused.text


def test_end_user_block_and_unblock_reach_the_data_plane(
    stack: Stack, admin: httpx.Client, model: str
) -> None:
    """/end_user/block refuses the end user's requests on the next call, /end_user/unblock lets
    them through again; /end_user/list and /end_user/delete answer as /customer/* does."""
    end_user = unique("blocked-end-user")
    ok_post(admin, "/end_user/new", {"user_id": end_user})
    client = openai.OpenAI(
        base_url=stack.base_url, api_key=ok_post(admin, "/key/generate", {})["key"], max_retries=0
    )

    def chat() -> int:
        try:
            client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "Hey!"}], user=end_user
            )
        except openai.APIStatusError as exc:
            return exc.status_code
        return 200

    assert chat() == 200
    assert ok_post(admin, "/end_user/block", {"user_ids": [end_user]}) == {"blocked_users": [end_user]}
    assert chat() == 403
    ok_post(admin, "/end_user/unblock", {"user_ids": [end_user]})
    assert chat() == 200
    assert end_user in {c["user_id"] for c in ok_get(admin, "/end_user/list")}
    assert ok_post(admin, "/end_user/delete", {"user_ids": [end_user]})["deleted_customers"] == [end_user]
