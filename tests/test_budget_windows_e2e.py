"""Budget periods through the admin API of the running stack: a period set on a key that already
spent is in its KV entry when the call returns; two periods on one key; removing one; the info
routes of keys, users, organizations and end users show budget_reset_at and every period; bad
budget_windows are refused with OpenAI-shaped errors; /metrics counts alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from hydite_common.devstack import Stack
from tests.harness import kv_total_entry, ok_get, ok_post, unique


def _midnight() -> str:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today + timedelta(days=1)).isoformat()


def _first_of_next_month() -> str:
    now = datetime.now(UTC)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return datetime(year, month, 1, tzinfo=UTC).isoformat()


def test_a_period_set_on_a_key_that_spent_is_in_its_entry_when_the_call_returns(
    stack: Stack, admin: httpx.Client
) -> None:
    """A key with 0.75 spent gets $10 a day and $200 a month: the entry read right after the update
    has both windows with baseline 0.75; /key/info shows the next midnight as budget_reset_at and
    both periods with spend 0; dropping the monthly one removes its window."""
    key = ok_post(admin, "/key/generate", {"spend": 0.75})
    token = key["token"]
    windows = [{"max_budget": 200, "soft_budget": 150, "budget_duration": "1mo"}]
    body = {"key": token, "max_budget": 10, "budget_duration": "1d", "budget_windows": windows}
    updated = ok_post(admin, "/key/update", body)
    assert updated["budget_windows"] == windows
    entry = kv_total_entry(stack, "key", token)
    assert {d: w.baseline for d, w in entry.windows.items()} == {
        "1d": {"USD": "0.750000000000"}, "1mo": {"USD": "0.750000000000"},
    }  # fmt: skip
    info = ok_get(admin, "/key/info", key=token)["info"]
    assert info["spend"] == pytest.approx(0.75)
    assert info["budget_reset_at"] == _midnight()
    periods = [
        (p["budget_duration"], p["max_budget"], p["spend"], p["budget_reset_at"])
        for p in info["budget_periods"]
    ]
    assert periods == [("1d", 10, 0, _midnight()), ("1mo", 200, 0, _first_of_next_month())]
    ok_post(admin, "/key/update", {"key": token, "budget_windows": []})
    assert set(kv_total_entry(stack, "key", token).windows) == {"1d"}


def test_spend_set_with_a_period_counts_in_the_period(stack: Stack, admin: httpx.Client) -> None:
    """A key generated with spend and a period: the period's spend is the spend set."""
    key = ok_post(admin, "/key/generate", {"spend": 2.0, "max_budget": 5, "budget_duration": "7d"})
    entry = kv_total_entry(stack, "key", key["token"])
    assert entry.windows["7d"].baseline == {}
    assert key["budget_periods"][0]["spend"] == pytest.approx(2.0)


def test_users_organizations_and_end_users_get_windows_and_show_their_resets(
    stack: Stack, admin: httpx.Client
) -> None:
    """/user/new, /organization/new and /customer/new with a daily budget: each entry has the
    window, each info route shows the next midnight; deleting the user removes its window."""
    user = unique("win-user")
    ok_post(
        admin,
        "/user/new",
        {"user_id": user, "max_budget": 3, "budget_duration": "1d", "auto_create_key": False},
    )
    org = ok_post(
        admin,
        "/organization/new",
        {"organization_alias": unique("win-org"), "max_budget": 3, "budget_duration": "1d"},
    )
    customer = unique("win-customer")
    ok_post(admin, "/customer/new", {"user_id": customer, "max_budget": 3, "budget_duration": "1d"})
    for kind, entity in (("user", user), ("organization", org["organization_id"]), ("customer", customer)):
        assert set(kv_total_entry(stack, kind, entity).windows) == {"1d"}, kind
    user_info = ok_get(admin, "/user/info", user_id=user)
    assert user_info["budget_reset_at"] == user_info["user_info"]["budget_reset_at"] == _midnight()
    org_info = ok_get(admin, "/organization/info", organization_id=org["organization_id"])
    assert org_info["budget_reset_at"] == _midnight()
    assert ok_get(admin, "/customer/info", user_id=customer)["budget_reset_at"] == _midnight()
    ok_post(admin, "/user/delete", {"user_ids": [user]})
    assert kv_total_entry(stack, "user", user).windows == {}


def test_a_budget_change_moves_the_windows_of_keys_linking_it(stack: Stack, admin: httpx.Client) -> None:
    """A key linking a budget takes its period; the budget's new period replaces the window."""
    budget = ok_post(admin, "/budget/new", {"max_budget": 4, "budget_duration": "1d"})["budget_id"]
    key = ok_post(admin, "/key/generate", {"budget_id": budget})
    assert set(kv_total_entry(stack, "key", key["token"]).windows) == {"1d"}
    ok_post(admin, "/budget/update", {"budget_id": budget, "budget_duration": "7d"})
    assert set(kv_total_entry(stack, "key", key["token"]).windows) == {"7d"}


_ONE_DAY = '"budget_duration": "1d"'
BAD_WINDOWS = {
    "infinite": f'[{{"max_budget": 1e999, {_ONE_DAY}}}]',
    "negative": f'[{{"max_budget": -1, {_ONE_DAY}}}]',
    "unparseable": '[{"max_budget": 1, "budget_duration": "1 day"}]',
    "duplicate": f'[{{"max_budget": 1, {_ONE_DAY}}}, {{"max_budget": 2, {_ONE_DAY}}}]',
    "eleven": "[" + ", ".join(f'{{"max_budget": 1, "budget_duration": "{n}d"}}' for n in range(1, 12)) + "]",
    "unknown-field": f'[{{"max_budget": 1, {_ONE_DAY}, "extra": true}}]',
}


@pytest.mark.parametrize("windows", BAD_WINDOWS.values(), ids=BAD_WINDOWS.keys())
def test_bad_budget_windows_are_refused(admin: httpx.Client, windows: str) -> None:
    """Each is a 4xx with an OpenAI-shaped error, never a 500."""
    response = admin.post("/key/generate", content=f'{{"budget_windows": {windows}}}'.encode())
    assert 400 <= response.status_code < 500, response.text
    assert {"message", "type", "code", "param"} <= response.json()["error"].keys()


def test_a_period_and_a_window_of_the_same_duration_are_refused(admin: httpx.Client) -> None:
    """budget_duration and a window may not share a duration."""
    response = admin.post(
        "/key/generate",
        json={"budget_duration": "1d", "budget_windows": [{"max_budget": 1, "budget_duration": "1d"}]},
    )
    assert response.status_code == 422, response.text


def test_metrics_show_the_budget_counters(stack: Stack) -> None:
    """The control plane's /metrics has the alert and reset counters."""
    text = httpx.get(f"{stack.admin_url}/metrics", timeout=5).text
    assert "hydite_budget_alerts_total" in text and "hydite_budget_window_resets_total" in text


def test_global_spend_without_a_proxy_budget(admin: httpx.Client) -> None:
    """No proxy budget configured: max_budget 0 (as LiteLLM shows it), no period, no reset."""
    answer = ok_get(admin, "/global/spend")
    assert (answer["max_budget"], answer["budget_reset_at"], answer["budget_periods"]) == (0.0, None, [])


def test_a_window_sharing_the_stored_duration_is_refused_on_update(admin: httpx.Client) -> None:
    """A key whose budget_duration is 1d may not get a 1d window later either."""
    token = ok_post(admin, "/key/generate", {"max_budget": 1, "budget_duration": "1d"})["token"]
    response = admin.post(
        "/key/update", json={"key": token, "budget_windows": [{"max_budget": 5, "budget_duration": "1d"}]}
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == "budget_windows"
