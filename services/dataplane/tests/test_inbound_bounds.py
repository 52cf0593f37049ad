"""Stage 1 refuses, with a 400 the client can read, the values that would otherwise reach a usage
event too long or with a control character: model names, the end user and tags."""

from __future__ import annotations

import pytest

from hydite_common.errors import InvalidRequestError
from hydite_dataplane.inbound.openai import checked_text, gateway_options, request_tags
from hydite_dataplane.usage.event import MAX_MODEL_CHARS, MAX_TAGS


@pytest.mark.parametrize("value", ["\x00", "a\x00b", "tab\there", "new\nline", "del\x7f", "c1\x85"])
def test_control_characters_are_refused(value: str) -> None:
    """NUL and every other control character is a 400 naming the field."""
    with pytest.raises(InvalidRequestError) as refused:
        checked_text(value, "user", 256)
    assert refused.value.status == 400 and refused.value.param == "user"


@pytest.mark.parametrize("value", ["acme-enduser-1", "café ☕", "no\u00a0break", "e\u200dmoji"])
def test_printable_and_other_unicode_values_pass(value: str) -> None:
    """Ordinary text, non-ASCII letters and non-control format characters are kept as they are."""
    assert checked_text(value, "user", 256) == value


def test_a_value_over_its_bound_is_refused() -> None:
    """A model name one character too long is a 400 string_above_max_length."""
    assert checked_text("m" * MAX_MODEL_CHARS, "model", MAX_MODEL_CHARS)
    with pytest.raises(InvalidRequestError) as refused:
        checked_text("m" * (MAX_MODEL_CHARS + 1), "model", MAX_MODEL_CHARS)
    assert refused.value.code == "string_above_max_length"


def test_tags_are_bounded_in_count_length_and_content() -> None:
    """Too many tags, a tag too long or one with a NUL is a 400; good tags follow the key's."""
    assert request_tags({"tags": ["b", "a"]}, ["a"]) == ["a", "b"]
    assert request_tags({"metadata": {"tags": ["x"]}}, []) == ["x"]
    for body in (
        {"tags": ["t"] * (MAX_TAGS + 1)},
        {"tags": ["t" * 129]},
        {"metadata": {"tags": ["\x00"]}},
    ):
        with pytest.raises(InvalidRequestError):
            request_tags(body, [])


def test_fallback_names_are_bounded_like_models() -> None:
    """A fallback becomes the request's model group: the same bounds apply."""
    assert gateway_options({"fallbacks": ["b"]}).fallbacks == ("b",)
    with pytest.raises(InvalidRequestError):
        gateway_options({"fallbacks": ["L" * 1000]})
