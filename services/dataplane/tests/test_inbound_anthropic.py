"""Stage 1 for Anthropic's Messages API: what the body must hold (model, messages, max_tokens) and the
end user it names (`metadata.user_id`), each refusal a 400 naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from hydite_common.errors import InvalidRequestError
from hydite_dataplane.inbound.anthropic import end_user, requested_model
from hydite_dataplane.routes import OPERATIONS
from hydite_dataplane.usage.event import MAX_MODEL_CHARS, MAX_USER_CHARS

HTTP_REQUEST = make_mocked_request("POST", "/v1/messages?beta=true")
VALID: dict[str, Any] = {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def test_a_complete_request_names_its_model() -> None:
    """model, messages and a positive max_tokens are all a request needs (stream is optional)."""
    assert requested_model(HTTP_REQUEST, OPERATIONS["messages"], {**VALID, "stream": True}) == "m"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"model": None}, "model"),
        ({"model": ""}, "model"),
        ({"model": "m" * (MAX_MODEL_CHARS + 1)}, "model"),
        ({"model": "a\x00b"}, "model"),
        ({"messages": None}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": []}, "messages"),
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"stream": "yes"}, "stream"),
    ],
)
def test_a_missing_or_wrong_field_is_a_400_naming_it(change: dict[str, Any], param: str) -> None:
    """Each required field missing or of the wrong kind is refused before any call."""
    body = {k: v for k, v in {**VALID, **change}.items() if v is not None}
    with pytest.raises(InvalidRequestError) as refused:
        requested_model(HTTP_REQUEST, OPERATIONS["messages"], body)
    assert refused.value.status == 400 and refused.value.param == param


def test_the_end_user_is_metadata_user_id() -> None:
    """metadata.user_id is the end user; no metadata or no user_id is none."""
    assert end_user({"metadata": {"user_id": "user_abc_session_1"}}) == "user_abc_session_1"
    assert end_user({}) == "" and end_user({"metadata": {}}) == ""


@pytest.mark.parametrize(
    ("metadata", "param"),
    [
        ("x", "metadata"),
        ({"user_id": 7}, "metadata.user_id"),
        ({"user_id": "u" * (MAX_USER_CHARS + 1)}, "metadata.user_id"),
        ({"user_id": "a\nb"}, "metadata.user_id"),
    ],
)
def test_a_bad_end_user_is_a_400(metadata: Any, param: str) -> None:
    """metadata must be an object and user_id a bounded string without control characters."""
    with pytest.raises(InvalidRequestError) as refused:
        end_user({"metadata": metadata})
    assert refused.value.param == param
