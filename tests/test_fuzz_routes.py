"""Property-based fuzzing of every admin write route, the admin read routes' query strings and
the inference routes, on a stack of its own: whatever the input, no 5xx, no traceback, errors in
OpenAI's shape, and afterwards a new key works and a blocked key is refused.

About 25 examples per route run in `make test` (the same ones every run); `make soak` runs 2,000
fresh ones per route.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hydite_common.devstack import Stack, StackConfig
from tests.harness import ok_post, synced

ADMIN_WRITES = (
    "/team/member_update", "/organization/member_add", "/organization/member_update",
    "/organization/member_delete",
    "/key/generate", "/key/update", "/key/delete", "/key/regenerate", "/key/block", "/key/unblock",
    "/user/new", "/user/update", "/user/delete", "/team/new", "/team/update", "/team/delete",
    "/team/member_add", "/team/member_delete", "/team/block", "/team/unblock", "/organization/new",
    "/organization/update", "/organization/delete", "/customer/new", "/customer/update",
    "/customer/delete", "/customer/block", "/customer/unblock", "/group/new", "/group/update",
    "/group/delete", "/model/new", "/model/update", "/model/delete", "/end_user/new", "/end_user/update",
    "/budget/new", "/budget/update", "/budget/delete", "/budget/info",
)  # fmt: skip
ADMIN_READS = (
    "/v2/model/info", "/model_group/info",
    "/key/info", "/key/list", "/user/info", "/user/list", "/team/info", "/team/list",
    "/organization/info", "/organization/list", "/customer/info", "/group/info", "/model/info",
    "/spend/logs", "/audit", "/config/status", "/end_user/info", "/budget/info", "/budget/list",
)  # fmt: skip
INFERENCE = (
    "/v1/chat/completions", "/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses",
    "/v1/moderations", "/v1/rerank", "/v1/images/generations", "/v1/audio/speech", "/utils/token_counter",
    "/v1/engines/fuzz-mock/chat/completions",
)  # fmt: skip
ADMIN_FIELDS = (
    "model_aliases", "max_budget_in_team", "max_budget_in_organization", "role", "router_settings",
    "object_permission", "team_member_budget",
    "key", "keys", "key_alias", "key_aliases", "new_key", "duration", "expires", "models", "key_group",
    "user_id", "user_ids", "team_id", "organization_id", "tags", "metadata", "max_budget", "soft_budget",
    "budget_duration", "rpm_limit", "tpm_limit", "max_parallel_requests", "model_rpm_limit",
    "model_tpm_limit", "blocked", "allowed_routes", "guardrails", "user_email", "user_role", "teams",
    "team_alias", "members_with_roles", "member", "organization_alias", "alias", "allowed_models",
    "name", "routing_strategy", "model_name", "litellm_params", "model_info", "model_id", "id",
    "auto_create_key", "team_ids", "organization_ids", "names", "aliases", "spend", "budget_id", "budgets",
    "grace_period", "key_type", "config", "permissions", "temp_budget_increase", "temp_budget_expiry",
    "allowed_model_region", "default_model", "budget_reset_at", "model_max_budget", "password",
)  # fmt: skip
INFERENCE_FIELDS = (
    "model", "messages", "prompt", "input", "stream", "stream_options", "user", "tags", "metadata",
    "num_retries", "fallbacks", "max_tokens", "temperature", "n", "tools", "tool_choice",
    "response_format", "query", "documents", "voice", "instructions", "size", "mock_response",
)  # fmt: skip
QUERY_NAMES = (
    "model_group", "search", "modelId", "sortBy", "sortOrder",
    "key", "team_id", "user_id", "organization_id", "page", "page_size", "size", "model_id", "api_key",
    "start_date", "end_date", "request_id", "end_user_id", "return_full_object", "key_alias", "budget_id",
)  # fmt: skip
TRICKY_STRINGS = (
    "", "\x00", "a\x00b", "sk-hydite-x", "*", "all-proxy-models", "fuzz-mock", "mock/x", "openai/x",
    "9999-12-31T23:59:59-23:59", "1000000000d", "-1s", "Infinity", "NaN", "<|endoftext|>", "x" * 300,
    "\ud7ff\ue000", "../../etc", "https://127.0.0.1:9/v1", "1e400",
)  # fmt: skip

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(TRICKY_STRINGS),
    st.text(max_size=20),
)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


def _bodies(fields: tuple[str, ...]) -> st.SearchStrategy[bytes]:
    """Request bodies: JSON objects of the route's fields (plus strangers), as Python's json writes
    them (64-bit overflows, NaN and Infinity included), and a few bodies that are not objects."""
    keys = st.sampled_from(fields) | st.text(max_size=6)
    objects = st.dictionaries(keys, values, max_size=6).map(lambda body: json.dumps(body).encode())
    odd = st.sampled_from(
        [
            b"",
            b"{",
            b"[]",
            b"null",
            b'"x"',
            b"\xff\xfe",
            b"[" * 2000 + b"]" * 2000,
            b'{"a":' * 1000 + b"1" + b"}" * 1000,
        ]
    )
    return st.one_of(objects, objects, objects, odd)


SIZES = [pytest.param(25, id="25"), pytest.param(2000, id="2000", marks=pytest.mark.soak)]


def _fuzzing(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=examples <= 100,  # make test: the same examples every run
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own (control plane and data plane), so what the fuzzer writes stays there."""
    running = Stack(StackConfig.ephemeral(Path(tmp_path_factory.mktemp("fuzz"))))
    try:
        running.start_dependencies()
        running.start_controlplane()
        running.start_dataplane()
        yield running
    finally:
        running.remove()


@pytest.fixture(scope="module")
def fuzz_admin(fuzz_stack: Stack) -> Iterator[httpx.Client]:
    """The master key's client on the fuzz stack's data plane."""
    with httpx.Client(
        base_url=fuzz_stack.base_url,
        headers={"Authorization": f"Bearer {fuzz_stack.config.master_key}"},
        timeout=30,
    ) as client:
        ok_post(client, "/model/new", {"model_name": "fuzz-mock", "litellm_params": {"model": "mock/x"}})
        yield client


@pytest.fixture(scope="module")
def fuzz_key(fuzz_admin: httpx.Client) -> str:
    """A key that may call every model of the fuzz stack."""
    key: str = ok_post(fuzz_admin, "/key/generate", {})["key"]
    synced(fuzz_admin)
    return key


def _check(response: httpx.Response, what: str) -> None:
    """No 5xx and no traceback; an error is OpenAI's {"error": {message, type, code, param}}."""
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:500]}"
    assert "Traceback" not in response.text, what
    if response.status_code >= 400:
        error = response.json()["error"]
        assert {"message", "type", "code", "param"} <= error.keys(), f"{what}: {response.text[:300]}"


def _still_governed(admin: httpx.Client, base_url: str) -> None:
    """A key made now works on the next request; a key blocked now is refused on the next one."""
    fresh = ok_post(admin, "/key/generate", {"models": ["fuzz-mock"]})["key"]
    doomed = ok_post(admin, "/key/generate", {"models": ["fuzz-mock"]})["key"]
    ok_post(admin, "/key/block", {"key": doomed})
    synced(admin)
    chat = {"model": "fuzz-mock", "messages": [{"role": "user", "content": "hi"}]}
    served = httpx.post(
        base_url + "/v1/chat/completions", json=chat, headers={"Authorization": f"Bearer {fresh}"}
    )
    assert served.status_code == 200, served.text
    refused = httpx.post(
        base_url + "/v1/chat/completions", json=chat, headers={"Authorization": f"Bearer {doomed}"}
    )
    assert refused.status_code == 401, refused.text


@pytest.mark.parametrize("examples", SIZES)
@pytest.mark.parametrize("path", ADMIN_WRITES)
def test_admin_writes_survive_any_body(
    fuzz_stack: Stack, fuzz_admin: httpx.Client, path: str, examples: int
) -> None:
    """Any body on an admin write route is answered below 500, and governance still holds."""

    @_fuzzing(examples)
    @given(body=_bodies(ADMIN_FIELDS))
    def fuzz(body: bytes) -> None:
        _check(fuzz_admin.post(path, content=body, headers={"Content-Type": "application/json"}), path)

    fuzz()
    _still_governed(fuzz_admin, fuzz_stack.base_url)


@pytest.mark.parametrize("examples", SIZES)
@pytest.mark.parametrize("path", ADMIN_READS)
def test_admin_reads_survive_any_query(fuzz_admin: httpx.Client, path: str, examples: int) -> None:
    """Any query string on an admin read route is answered below 500."""
    names = st.sampled_from(QUERY_NAMES)

    @_fuzzing(examples)
    @given(
        query=st.dictionaries(
            names | st.text(max_size=5), st.sampled_from(TRICKY_STRINGS) | st.text(max_size=12), max_size=4
        )
    )
    def fuzz(query: dict[str, Any]) -> None:
        _check(fuzz_admin.get(path, params=query), path)

    fuzz()


@pytest.mark.parametrize("examples", SIZES)
@pytest.mark.parametrize("path", INFERENCE)
def test_inference_survives_any_body(
    fuzz_stack: Stack, fuzz_admin: httpx.Client, fuzz_key: str, path: str, examples: int
) -> None:
    """Any body on an inference route, from a valid key, is answered below 500, and governance
    still holds."""
    headers = {"Authorization": f"Bearer {fuzz_key}", "Content-Type": "application/json"}
    with httpx.Client(base_url=fuzz_stack.base_url, headers=headers, timeout=30) as client:

        @_fuzzing(examples)
        @given(body=_bodies(INFERENCE_FIELDS))
        def fuzz(body: bytes) -> None:
            _check(client.post(path, content=body), path)

        fuzz()
    _still_governed(fuzz_admin, fuzz_stack.base_url)
