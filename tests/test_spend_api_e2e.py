"""The spend API end to end: traffic of a few keys, users, teams, tags and end users through the stack,
then every spend route's numbers match what was sent at the deployment's own prices; live spend in
the info routes; reset_spend and admin spend changes seen on the very next call and in the totals'
KV entry; admin-only reports; bad query parameters; stored payloads and their redaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest

from hydite_common.devstack import Stack, free_port
from hydite_common.settings import to_libpq_url, with_database_name
from tests.fakes.openai_server import FakeOpenAI
from tests.harness import deploy_fake, kv_total_entry, ok_get, ok_post, synced, unique, wait_until

PROMPT, COMPLETION = 11, 7  # the fake upstream's chat usage
INPUT_PRICE, OUTPUT_PRICE = 1e-6, 2e-6
CALL_COST = PROMPT * INPUT_PRICE + COMPLETION * OUTPUT_PRICE
INGEST_SECONDS = 15.0


def _chat(stack: Stack, key: str, model: str, **extra: Any) -> str:
    response = httpx.post(
        stack.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], **extra},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.headers["x-request-id"]


def _as(stack: Stack, key: str) -> httpx.Client:
    return httpx.Client(base_url=stack.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def _db(stack: Stack) -> psycopg.Connection[Any]:
    assert stack.postgres is not None
    url = with_database_name(to_libpq_url(stack.postgres.url), stack.config.database_name)
    return psycopg.connect(url, autocommit=True)


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert {"message", "type", "code", "param"} <= error.keys()
    return error


@pytest.fixture(scope="module")
def traffic(stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str]) -> dict[str, Any]:
    """A team with a user whose key sends two tagged calls for an end user, and a plain key sending
    one call with another tag; yields the names once every call is in the running totals."""
    _, base = fake_openai
    model = unique("spendapi")
    deploy_fake(
        admin,
        base,
        model,
        "gpt-4o-mini",
        input_cost_per_token=INPUT_PRICE,
        output_cost_per_token=OUTPUT_PRICE,
    )
    team = ok_post(admin, "/team/new", {"team_alias": unique("spend-team")})["team_id"]
    user = unique("spend-user")
    ok_post(admin, "/user/new", {"user_id": user, "auto_create_key": False})
    customer = unique("spend-customer")
    ok_post(admin, "/customer/new", {"user_id": customer})
    tags = [unique("tag-a"), unique("tag-b")]
    team_key = ok_post(admin, "/key/generate", {"team_id": team, "user_id": user})
    plain_key = ok_post(admin, "/key/generate", {})
    synced(admin)
    requests = [
        _chat(stack, team_key["key"], model, tags=[tags[0]], user=customer),
        _chat(stack, team_key["key"], model, tags=[tags[0]], user=customer),
        _chat(stack, plain_key["key"], model, tags=[tags[1]]),
    ]

    def ingested() -> bool:
        info = ok_get(admin, "/key/info", key=team_key["token"])["info"]
        other = ok_get(admin, "/key/info", key=plain_key["token"])["info"]
        return bool(
            info["spend"] == pytest.approx(2 * CALL_COST) and other["spend"] == pytest.approx(CALL_COST)
        )

    wait_until(ingested, timeout=INGEST_SECONDS, interval=0.1)
    today = datetime.now(UTC).date().isoformat()
    return {
        "model": model, "team": team, "user": user, "customer": customer, "tags": tags, "team_key": team_key,
        "plain_key": plain_key, "requests": requests, "today": today,
    }  # fmt: skip


def test_info_routes_show_live_spend(admin: httpx.Client, traffic: dict[str, Any]) -> None:
    """/key/info, /user/info, /team/info, /customer/info and /key/list show the running totals."""
    two = pytest.approx(2 * CALL_COST)
    assert ok_get(admin, "/user/info", user_id=traffic["user"])["user_info"]["spend"] == two
    team = ok_get(admin, "/team/info", team_id=traffic["team"])
    assert team["team_info"]["spend"] == two and team["spend"] == two
    assert [k["spend"] for k in team["keys"]] == [two]
    assert ok_get(admin, "/customer/info", user_id=traffic["customer"])["spend"] == two
    listed = ok_get(admin, "/key/list", team_id=traffic["team"], return_full_object="true")["keys"]
    assert [k["spend"] for k in listed] == [two]


def test_spend_logs_filters(stack: Stack, admin: httpx.Client, traffic: dict[str, Any]) -> None:
    """/spend/logs narrows by end user, model and status and takes LiteLLM's plain dates; a plain key
    sees only its own rows."""
    by_customer = ok_get(admin, "/spend/logs", end_user=traffic["customer"])
    assert sorted(r["request_id"] for r in by_customer) == sorted(traffic["requests"][:2])
    assert len(ok_get(admin, "/spend/logs", customer=traffic["customer"], status="success")) == 2
    assert ok_get(admin, "/spend/logs", customer=traffic["customer"], status="failure") == []
    assert len(ok_get(admin, "/spend/logs", model=traffic["model"])) == 3
    today = traffic["today"]
    dates = {"start_date": today, "end_date": today}
    assert len(ok_get(admin, "/spend/logs", model=traffic["model"], summarize="false", **dates)) == 3
    yesterday = (datetime.fromisoformat(today) - timedelta(days=1)).date().isoformat()
    assert ok_get(admin, "/spend/logs", model=traffic["model"], end_date=yesterday) == []
    with _as(stack, traffic["plain_key"]["key"]) as plain:
        own = ok_get(plain, "/spend/logs", model=traffic["model"])
        assert [r["request_id"] for r in own] == [traffic["requests"][2]]
    _error(admin.get("/spend/logs", params={"start_date": "yesterday"}), 400)
    _error(admin.get("/spend/logs", params={"summarize": "maybe", **dates}), 400)


def test_spend_logs_summary_per_day(admin: httpx.Client, traffic: dict[str, Any]) -> None:
    """With start_date and end_date, /spend/logs answers LiteLLM's per-day summary: spend, per key,
    per user and per model, from the rows a filter narrows to or from the daily rollups."""
    today = traffic["today"]
    team_key, plain_key = traffic["team_key"]["token"], traffic["plain_key"]["token"]
    yesterday = (datetime.fromisoformat(today) - timedelta(days=1)).date().isoformat()
    summary = ok_get(admin, "/spend/logs", model=traffic["model"], start_date=yesterday, end_date=today)
    assert summary == [
        {
            "startTime": today,
            "spend": pytest.approx(3 * CALL_COST),
            team_key: pytest.approx(2 * CALL_COST),
            plain_key: pytest.approx(CALL_COST),
            "users": {traffic["user"]: pytest.approx(2 * CALL_COST), "": pytest.approx(CALL_COST)},
            "models": {traffic["model"]: pytest.approx(3 * CALL_COST)},
        }
    ]
    [whole] = ok_get(admin, "/spend/logs", start_date=today, end_date=today)
    assert whole["startTime"] == today and whole[team_key] == pytest.approx(2 * CALL_COST)
    assert whole["models"][traffic["model"]] == pytest.approx(3 * CALL_COST)
    assert whole["users"][traffic["user"]] == pytest.approx(2 * CALL_COST)


def test_reports_match_the_traffic(admin: httpx.Client, traffic: dict[str, Any]) -> None:
    """Tags, the daily reports by team, customer, key, model and provider, and the activity sums
    count exactly the requests, tokens and cost sent."""
    today, tokens = traffic["today"], PROMPT + COMPLETION

    def tagged() -> list[dict[str, Any]]:
        rows = ok_get(admin, "/spend/tags", start_date=today, end_date=today)
        return [r for r in rows if r["individual_request_tag"] in traffic["tags"]]

    mine = wait_until(lambda: len(tagged()) == 2 and tagged(), timeout=INGEST_SECONDS, interval=0.1)
    assert {r["individual_request_tag"]: (r["log_count"], r["total_spend"]) for r in mine} == {
        traffic["tags"][0]: (2, pytest.approx(2 * CALL_COST)),
        traffic["tags"][1]: (1, pytest.approx(CALL_COST)),
    }
    dates = {"start_date": today, "end_date": today}
    [day] = ok_get(admin, "/global/spend/report", group_by="team", team_id=traffic["team"], **dates)
    assert day["group_by_day"].startswith(today)
    [team] = day["teams"]
    assert team["team_id"] == traffic["team"] and team["total_spend"] == pytest.approx(2 * CALL_COST)
    assert [(m["model"], m["total_tokens"], m["requests"]) for m in team["metadata"]] == [
        (traffic["model"], 2 * tokens, 2)
    ]
    everyone = ok_get(admin, "/global/spend/report", group_by="team", **dates)
    names = [t["team_name"] for d in everyone for t in d["teams"]]
    assert "Unassigned Team" in names
    [day] = ok_get(
        admin, "/global/spend/report", group_by="customer", customer_id=traffic["customer"], **dates
    )
    assert [(c["customer"], c["total_spend"]) for c in day["customers"]] == [
        (traffic["customer"], pytest.approx(2 * CALL_COST))
    ]
    [key] = ok_get(admin, "/global/spend/report", api_key=traffic["team_key"]["key"], **dates)
    assert key["api_key"] == traffic["team_key"]["token"]
    assert (key["total_input_tokens"], key["total_output_tokens"]) == (2 * PROMPT, 2 * COMPLETION)
    assert key["total_cost"] == pytest.approx(2 * CALL_COST)
    by_model = ok_get(admin, "/global/spend/report", group_by="model", **dates)
    [model] = [m for d in by_model for m in d["models"] if m["model"] == traffic["model"]]
    assert (model["requests"], model["total_tokens"]) == (3, 3 * tokens)
    assert model["total_spend"] == pytest.approx(3 * CALL_COST)
    assert [p["provider"] for p in model["metadata"]] == ["openai"]
    providers = ok_get(admin, "/global/spend/report", group_by="provider", **dates)
    assert any(p["provider"] == "openai" for d in providers for p in d["providers"])
    activity = ok_get(admin, "/global/activity", **dates)
    assert activity["sum_api_requests"] >= 3 and activity["daily_data"][-1]["day"] == today
    assert ok_get(admin, "/global/spend")["spend"] >= 3 * CALL_COST - 1e-12


def test_internal_user_sees_its_own_activity(
    stack: Stack, admin: httpx.Client, traffic: dict[str, Any]
) -> None:
    """/global/activity answers an internal user's key about its own user; reports are admin only."""
    today = traffic["today"]
    with _as(stack, traffic["team_key"]["key"]) as own:
        activity = ok_get(own, "/global/activity", start_date=today, end_date=today)
        assert (activity["sum_api_requests"], activity["sum_total_tokens"]) == (2, 2 * (PROMPT + COMPLETION))
        assert activity["daily_data"][0]["date"] == datetime.fromisoformat(today).strftime("%b %d")
        for path in ("/spend/tags", "/global/spend", "/spend/users", "/spend/reconciliation"):
            _error(own.get(path), 403)
        _error(own.get("/global/spend/report", params={"start_date": today, "end_date": today}), 403)
    with _as(stack, traffic["plain_key"]["key"]) as plain:
        _error(plain.get("/global/activity", params={"start_date": today, "end_date": today}), 403)


def test_bad_report_parameters_are_400s(admin: httpx.Client) -> None:
    """Missing or bad dates and an unknown group_by are OpenAI-shaped 400s naming the parameter."""
    assert _error(admin.get("/global/spend/report"), 400)["param"] == "start_date"
    bad = admin.get("/global/spend/report", params={"start_date": "2026-13-01", "end_date": "2026-01-02"})
    assert _error(bad, 400)["param"] == "start_date"
    unknown = admin.get(
        "/global/spend/report", params={"start_date": "2026-01-01", "end_date": "2026-01-02", "group_by": "x"}
    )
    assert _error(unknown, 400)["param"] == "group_by"
    backwards = admin.get("/global/activity", params={"start_date": "2026-01-03", "end_date": "2026-01-02"})
    assert _error(backwards, 400)["param"] == "start_date"
    assert _error(admin.get("/spend/tags", params={"end_date": "soon"}), 400)["param"] == "end_date"
    assert _error(admin.get("/spend/reconciliation", params={"start": "x"}), 400)["param"] == "start"


def test_reset_spend_is_seen_at_once_and_in_thekv_total_entry(
    stack: Stack, admin: httpx.Client, traffic: dict[str, Any]
) -> None:
    """reset_spend sets the key's total: the very next /key/info and the KV entry hold it; more than
    the current spend is a 400, a non-admin a 403."""
    token = traffic["plain_key"]["token"]
    before = kv_total_entry(stack, "key", token)
    too_much = admin.post(f"/key/{token}/reset_spend", json={"reset_to": 1.0})
    assert _error(too_much, 400)["param"] == "reset_to"
    with _as(stack, traffic["team_key"]["key"]) as own:
        _error(own.post(f"/key/{token}/reset_spend", json={"reset_to": 0}), 403)
    answer = ok_post(admin, f"/key/{token}/reset_spend", {"reset_to": CALL_COST / 5})
    assert answer["previous_spend"] == pytest.approx(CALL_COST) and answer["spend"] == CALL_COST / 5
    assert answer["budget_reset_at"] is not None
    assert ok_get(admin, "/key/info", key=token)["info"]["spend"] == pytest.approx(CALL_COST / 5)
    entry = kv_total_entry(stack, "key", token)
    assert Decimal(entry.spend["USD"]) == Decimal(str(CALL_COST / 5))
    assert entry.version > before.version and entry.reset_at_ms is not None


def test_user_and_customer_spend_updates_set_the_totals(
    stack: Stack, admin: httpx.Client, traffic: dict[str, Any]
) -> None:
    """/user/update and /customer/update with spend set the running total and its KV entry before
    they answer."""
    ok_post(admin, "/user/update", {"user_id": traffic["user"], "spend": 0.5})
    assert ok_get(admin, "/user/info", user_id=traffic["user"])["user_info"]["spend"] == 0.5
    assert Decimal(kv_total_entry(stack, "user", traffic["user"]).spend["USD"]) == Decimal("0.5")
    ok_post(admin, "/customer/update", {"user_id": traffic["customer"], "spend": 0.25})
    assert ok_get(admin, "/customer/info", user_id=traffic["customer"])["spend"] == 0.25
    assert Decimal(kv_total_entry(stack, "customer", traffic["customer"]).spend["USD"]) == Decimal("0.25")
    users = ok_get(admin, "/spend/users", user_id=traffic["user"])
    assert [(u["user_id"], u["spend"]) for u in users] == [(traffic["user"], 0.5)]


def test_stored_payloads_are_redacted_by_key_and_time(
    stack: Stack, admin: httpx.Client, traffic: dict[str, Any]
) -> None:
    """A key that stores prompts gets them in /spend/logs; redacting its payloads stored before a time
    empties them (once), a payload stored later is kept, and only an admin may redact."""
    key = ok_post(admin, "/key/generate", {"store_prompts": True})
    synced(admin)
    request_id = _chat(stack, key["key"], traffic["model"])

    def stored() -> dict[str, Any] | None:
        rows: list[dict[str, Any]] = ok_get(admin, "/spend/logs", request_id=request_id)
        return rows[0] if rows and rows[0]["messages"] is not None else None

    row = wait_until(stored, timeout=INGEST_SECONDS, interval=0.05)
    assert row["messages"] == {"messages": [{"role": "user", "content": "hi"}]}
    earlier = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert ok_post(admin, "/spend/logs/redact", {"api_key": key["key"], "before": earlier})["redacted"] == 0
    with _as(stack, traffic["plain_key"]["key"]) as plain:
        _error(plain.post("/spend/logs/redact", json={"request_ids": [request_id]}), 403)
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert ok_post(admin, "/spend/logs/redact", {"api_key": key["token"], "before": later})["redacted"] == 1
    [row] = ok_get(admin, "/spend/logs", request_id=request_id)
    assert row["messages"] is None and row["response"] is None
    assert row["metadata"]["payload_redacted_at"] is not None
    assert ok_post(admin, "/spend/logs/redact", {"request_ids": [request_id]})["redacted"] == 0
    _error(admin.post("/spend/logs/redact", json={"api_key": key["key"]}), 422)
    _error(admin.post("/spend/logs/redact", json={"request_ids": ["x"] * 10_001}), 422)


def test_reconciliation_per_node_and_minute(
    stack: Stack, admin: httpx.Client, traffic: dict[str, Any]
) -> None:
    """/spend/reconciliation sums a node's publishers per minute, with missing = emitted - ingested;
    the stack's data plane shows what it ingested of the traffic."""
    node_of_stack = f"dataplane-{stack.config.dataplane_port}"

    def counted() -> bool:
        nodes = ok_get(admin, "/spend/reconciliation", node_id=node_of_stack)["nodes"]
        return bool(nodes) and int(nodes[0]["ingested"]) >= len(traffic["requests"])

    wait_until(counted, timeout=INGEST_SECONDS, interval=0.1)
    node = f"recon-{uuid.uuid4().hex[:8]}"
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    with _db(stack) as conn:
        for publisher, emitted, ingested in (("a", 5, 3), ("b", 2, 2)):
            conn.execute(
                "INSERT INTO spend_reconciliation (publisher_id, minute, node_id, emitted, ingested) "
                "VALUES (%s, %s, %s, %s, %s)",
                (f"{node}.{publisher}", minute, node, emitted, ingested),
            )
    answer = ok_get(admin, "/spend/reconciliation", node_id=node)
    assert answer["data"] == [
        {"node_id": node, "minute": minute.isoformat(), "emitted": 7, "ingested": 5, "missing": 2}
    ]
    assert answer["totals"] == {"emitted": 7, "ingested": 5, "missing": 2}
    earlier = ok_get(
        admin, "/spend/reconciliation", node_id=node, end=(minute - timedelta(minutes=1)).isoformat()
    )
    assert earlier["data"] == []


def test_store_prompts_is_kept_on_keys_and_teams(admin: httpx.Client) -> None:
    """store_prompts is set by /key/generate, /key/update, /team/new and /team/update and shown by
    their info routes."""
    key = ok_post(admin, "/key/generate", {"store_prompts": True})
    assert ok_get(admin, "/key/info", key=key["token"])["info"]["store_prompts"] is True
    ok_post(admin, "/key/update", {"key": key["token"], "store_prompts": False})
    assert ok_get(admin, "/key/info", key=key["token"])["info"]["store_prompts"] is False
    team = ok_post(admin, "/team/new", {"store_prompts": True})["team_id"]
    assert ok_get(admin, "/team/info", team_id=team)["team_info"]["store_prompts"] is True
    ok_post(admin, "/team/update", {"team_id": team, "store_prompts": False})
    assert ok_get(admin, "/team/info", team_id=team)["team_info"]["store_prompts"] is False


def test_spend_changes_without_nats_are_503s_that_change_nothing(
    stack: Stack, admin: httpx.Client, traffic: dict[str, Any]
) -> None:
    """A control plane that cannot reach NATS answers an admin change of spend with a 503 and leaves
    the total (and the row) as they were."""
    replica = stack.start_controlplane(
        admin_port=free_port(), grpc_port=free_port(), HYDITE_NATS_URL=f"nats://127.0.0.1:{free_port()}"
    )
    try:
        admin_url = replica.health_url.removesuffix("/health/readiness")
        token, user = traffic["team_key"]["token"], traffic["user"]
        spent = ok_get(admin, "/key/info", key=token)["info"]["spend"]
        user_spent = ok_get(admin, "/user/info", user_id=user)["user_info"]["spend"]
        auth = {"Authorization": f"Bearer {stack.config.master_key}"}
        with httpx.Client(base_url=admin_url, headers=auth, timeout=10) as cut_off:
            error = _error(cut_off.post(f"/key/{token}/reset_spend", json={"reset_to": 0}), 503)
            assert error["code"] == "spend_totals_unavailable"
            _error(cut_off.post("/user/update", json={"user_id": user, "spend": 3.0}), 503)
            _error(cut_off.post("/key/update", json={"key": token, "spend": 3.0}), 503)
            assert ok_get(cut_off, "/key/info", key=token)["info"]["spend"] == spent
        assert ok_get(admin, "/user/info", user_id=user)["user_info"]["spend"] == user_spent
        assert ok_get(admin, "/key/info", key=token)["info"]["spend"] == spent
    finally:
        stack.stop_service(replica)


def test_spend_in_two_currencies_is_shown_per_currency(
    stack: Stack, admin: httpx.Client, fake_openai: tuple[FakeOpenAI, str], traffic: dict[str, Any]
) -> None:
    """A key that spent in US dollars and yuan shows spend_by_currency beside the summed spend, in
    /key/info and in the key's spend report."""
    model = unique("spendapi-cny")
    deploy_fake(
        admin, fake_openai[1], model, "gpt-4o-mini", input_cost_per_token=2 * INPUT_PRICE,
        output_cost_per_token=2 * OUTPUT_PRICE, currency="CNY",
    )  # fmt: skip
    key = ok_post(admin, "/key/generate", {})
    synced(admin)
    _chat(stack, key["key"], traffic["model"])
    _chat(stack, key["key"], model)
    expected = {"CNY": pytest.approx(2 * CALL_COST), "USD": pytest.approx(CALL_COST)}

    def both() -> dict[str, Any] | None:
        info: dict[str, Any] = ok_get(admin, "/key/info", key=key["token"])["info"]
        return info if info.get("spend_by_currency") == expected else None

    info = wait_until(both, timeout=INGEST_SECONDS, interval=0.1)
    assert info["spend"] == pytest.approx(3 * CALL_COST)
    today = traffic["today"]
    [report] = ok_get(admin, "/global/spend/report", api_key=key["key"], start_date=today, end_date=today)
    assert report["spend_by_currency"] == expected and report["total_cost"] == pytest.approx(3 * CALL_COST)


def test_organization_info_shows_live_spend(
    stack: Stack, admin: httpx.Client, traffic: dict[str, Any]
) -> None:
    """An organization's key spends; /organization/info shows the organization's running total."""
    org = ok_post(admin, "/organization/new", {"organization_alias": unique("spend-org")})["organization_id"]
    key = ok_post(admin, "/key/generate", {"organization_id": org})
    synced(admin)
    _chat(stack, key["key"], traffic["model"])

    def spent() -> bool:
        info = ok_get(admin, "/organization/info", organization_id=org)
        return bool(info["spend"] == pytest.approx(CALL_COST))

    wait_until(spent, timeout=INGEST_SECONDS, interval=0.1)
    ok_post(admin, "/organization/update", {"organization_id": org, "spend": 0})
    assert ok_get(admin, "/organization/info", organization_id=org)["spend"] == 0
    assert Decimal(kv_total_entry(stack, "organization", org).spend["USD"]) == 0
