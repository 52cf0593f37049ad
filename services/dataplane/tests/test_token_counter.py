"""Token counting follows OpenAI's encodings and chat rule, offline."""

from __future__ import annotations

import pytest

from hydite_common.errors import InvalidRequestError
from hydite_dataplane.encodings import MAX_COUNTED_CHARS, count_chat_tokens, count_tokens, encoding_for


def test_encodings_are_chosen_by_model_and_bundled() -> None:
    """gpt-4o models use o200k_base, gpt-4 cl100k_base; unknown models fall back to o200k_base."""
    assert encoding_for("gpt-4o-mini")[1] == "o200k_base"
    assert encoding_for("openai/gpt-4")[1] == "cl100k_base"
    assert encoding_for("some-new-model")[1] == "o200k_base"
    encoding, _ = encoding_for("gpt-4o-mini")
    assert len(encoding.encode("hello world")) == 2


def test_chat_rule_counts_message_overhead_and_names() -> None:
    """Each message adds 3 tokens plus its role, a name adds 1 plus itself, and the reply is primed with 3."""
    encoding, _ = encoding_for("gpt-4o-mini")
    one = count_chat_tokens(encoding, [{"role": "user", "content": "hello world"}])
    assert one == 3 + 3 + 2 + len(encoding.encode("user"))
    named = count_chat_tokens(encoding, [{"role": "user", "content": "hello world", "name": "bob"}])
    assert named == one + 1 + len(encoding.encode("bob"))
    parts = count_chat_tokens(
        encoding, [{"role": "user", "content": [{"type": "text", "text": "hello world"}]}]
    )
    assert parts == one
    with pytest.raises(InvalidRequestError):
        count_chat_tokens(encoding, ["not a message"])


def test_special_token_text_counts_as_text_and_huge_text_is_a_400() -> None:
    """<|endoftext|> in a prompt is counted as the characters it is; text past the bound is a 400."""
    encoding, _ = encoding_for("gpt-4o")
    assert count_tokens(encoding, "<|endoftext|>") > 1
    with pytest.raises(InvalidRequestError) as huge:
        count_tokens(encoding, "w" * (MAX_COUNTED_CHARS + 1))
    assert huge.value.status == 400
