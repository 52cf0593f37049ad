"""LiteLLM's tag management on the admin API: /tag/new, /tag/update, /tag/info, /tag/list and
/tag/delete with a tag's budget and limits, its live spend, audit entries and config versions,
admin-only writes, and OpenAI-shaped errors for bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from hydite_common.devstack import Stack
from tests.fakes.openai_server import FakeOpenAI
from tests.harness import deploy_fake, ok_get, ok_post, unique, wait_until


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) >= {"message", "type", "code", "param"}
    return error


def test_a_tag_is_created_shown_updated_listed_and_deleted(admin: httpx.Client) -> None:
    """Each route answers as LiteLLM's does, and every write is a config version the data planes applied."""
    name = unique("tag")
    created = admin.post(
        "/tag/new",
        json={"name": name, "description": "engineering", "models": ["gpt-x"], "max_budget": 50.0,
              "budget_duration": "1mo", "soft_budget": 40.0, "rpm_limit": 10, "tpm_limit": 1000,
              "max_parallel_requests": 2, "metadata": {"cost_center": "eng"}},
    )  # fmt: skip
    assert created.status_code == 200, created.text
    assert created.json()["message"] == f"Tag {name} created successfully"
    assert created.json()["tag"]["models"] == ["gpt-x"]
    applied, connected = created.headers["x-hydite-config-applied"].split("/")
    assert applied == connected and int(connected) >= 1

    info = ok_post(admin, "/tag/info", {"names": [name]})[name]
    assert info["description"] == "engineering"
    assert info["metadata"] == {"cost_center": "eng"}
    assert info["spend"] == 0.0
    assert info["litellm_budget_table"] == {
        "budget_id": None, "max_budget": 50.0, "soft_budget": 40.0, "max_parallel_requests": 2,
        "tpm_limit": 1000, "rpm_limit": 10, "model_max_budget": {}, "budget_duration": "1mo",
    }  # fmt: skip

    updated = ok_post(admin, "/tag/update", {"name": name, "rpm_limit": 20, "soft_budget": None})
    assert updated["message"] == f"Tag {name} updated successfully"
    table = ok_post(admin, "/tag/info", {"names": [name]})[name]["litellm_budget_table"]
    assert (table["rpm_limit"], table["soft_budget"], table["max_budget"]) == (20, None, 50.0)

    listed = {t["name"]: t for t in ok_get(admin, "/tag/list")}
    assert listed[name]["spend"] == 0.0 and listed[name]["description"] == "engineering"

    deleted = ok_post(admin, "/tag/delete", {"name": name})
    assert deleted == {"message": f"Tag {name} deleted successfully"}
    assert name not in {t["name"] for t in ok_get(admin, "/tag/list")}
    actions = [e["action"] for e in ok_get(admin, "/audit", object_type="tag", object_id=name)["entries"]]
    assert sorted(actions) == ["tag.delete", "tag.new", "tag.update"]


def test_a_tag_without_limits_has_no_budget_table(admin: httpx.Client) -> None:
    """A tag that sets no budget or limit shows no litellm_budget_table, as LiteLLM's does."""
    name = unique("tag-plain")
    ok_post(admin, "/tag/new", {"name": name})
    assert "litellm_budget_table" not in ok_post(admin, "/tag/info", {"names": [name]})[name]


def test_missing_and_duplicate_tags(admin: httpx.Client) -> None:
    """Unknown tags are a 404 naming them; creating a tag twice is a 409."""
    name = unique("tag-dup")
    ok_post(admin, "/tag/new", {"name": name})
    assert _error(admin.post("/tag/new", json={"name": name}), 409)["param"] == "name"
    ghost = unique("tag-ghost")
    assert ghost in _error(admin.post("/tag/info", json={"names": [name, ghost]}), 404)["message"]
    assert (
        _error(admin.post("/tag/update", json={"name": ghost, "rpm_limit": 1}), 404)["code"]
        == "tag_not_found"
    )
    assert _error(admin.post("/tag/delete", json={"name": ghost}), 404)["code"] == "tag_not_found"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ('{"name": "NAME", "max_budget": -1}', "max_budget"),
        ('{"name": "NAME", "rpm_limit": -3}', "rpm_limit"),
        ('{"name": "NAME", "tpm_limit": 18446744073709551616}', None),
        ('{"name": "NAME", "max_budget": 1e300}', "max_budget"),
        ('{"name": "NAME", "max_budget": 1e999}', None),
        ('{"name": "NAME", "budget_duration": "fortnightly"}', "budget_duration"),
        ('{"name": ""}', "name"),
        ('{"name": "NAME", "colour": "red"}', "colour"),
        ('{"name": "NAME", "models": "gpt-x"}', "models"),
    ],
)
def test_bad_tag_bodies_are_openai_shaped_errors(admin: httpx.Client, body: str, param: str | None) -> None:
    """A value no limit can hold, a bad duration, an unknown field: a 4xx naming the field, no tag made."""
    name = unique("tag-bad")
    response = admin.post(
        "/tag/new", content=body.replace("NAME", name), headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    error = _error(response, response.status_code)
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param
    assert name not in {t["name"] for t in ok_get(admin, "/tag/list")}


def test_only_admins_write_tags(stack: Stack, admin: httpx.Client) -> None:
    """A key that is not an admin's may neither create, change nor read tags."""
    name = unique("tag-authz")
    ok_post(admin, "/tag/new", {"name": name})
    key = ok_post(admin, "/key/generate", {})["key"]
    with httpx.Client(
        base_url=stack.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
    ) as plain:
        assert plain.post("/tag/new", json={"name": unique("tag-x")}).status_code == 403
        assert plain.post("/tag/update", json={"name": name, "rpm_limit": 1}).status_code == 403
        assert plain.post("/tag/delete", json={"name": name}).status_code == 403
        assert plain.post("/tag/info", json={"names": [name]}).status_code == 403
        assert plain.get("/tag/list").status_code == 403
    assert (
        admin.post("/tag/new", json={"name": unique("tag-y")}, headers={"Authorization": ""}).status_code
        == 401
    )


def test_tag_spend_is_live_and_tags_only_seen_in_requests_are_listed(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """A stored tag's /tag/info and /tag/list spend is its running total; a tag requests carried that
    is not stored is listed as LiteLLM's dynamic tag, within the days asked for."""
    _, base = fake_openai
    model = unique("tag-model")
    model_id = deploy_fake(
        admin, base, model, "gpt-4o-mini", input_cost_per_token=1e-6, output_cost_per_token=2e-6
    )
    stored, dynamic = unique("tag-stored"), unique("tag-dynamic")
    ok_post(admin, "/tag/new", {"name": stored, "models": [model_id]})
    assert ok_post(admin, "/tag/info", {"names": [stored]})[stored]["model_info"] == {model_id: model}
    key = ok_post(admin, "/key/generate", {})["key"]
    response = httpx.post(
        stack.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], "tags": [stored, dynamic]},
        timeout=10,
    )
    assert response.status_code == 200, response.text

    def listed() -> dict[str, Any] | None:
        tags = {t["name"]: t for t in ok_get(admin, "/tag/list")}
        ready = dynamic in tags and tags[dynamic]["spend"] > 0 and tags[stored]["spend"] > 0
        return tags if ready else None

    tags = wait_until(listed, timeout=15.0, interval=0.1)
    assert tags[dynamic]["models"] is None and "dynamically" in tags[dynamic]["description"]
    assert ok_post(admin, "/tag/info", {"names": [stored]})[stored]["spend"] == tags[stored]["spend"]
    today = tags[dynamic]["updated_at"]
    within = {t["name"] for t in ok_get(admin, "/tag/list", start_date=today, end_date=today)}
    assert {stored, dynamic} <= within
    before = {t["name"] for t in ok_get(admin, "/tag/list", start_date="2001-01-01", end_date="2001-01-02")}
    assert stored in before and dynamic not in before
    assert _error(admin.get("/tag/list", params={"start_date": today}), 400)["param"] == "end_date"
    bad_order = admin.get("/tag/list", params={"start_date": "2001-01-02", "end_date": "2001-01-01"})
    assert _error(bad_order, 400)["param"] == "start_date"
    assert (
        _error(admin.get("/tag/list", params={"start_date": "soon", "end_date": today}), 400)["param"]
        == "start_date"
    )
