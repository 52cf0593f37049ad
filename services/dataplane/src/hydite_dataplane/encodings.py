"""Token counting the way OpenAI's models count, offline: the encodings come bundled with bpe-openai
(no download at run time), loaded on first use. Used by /utils/token_counter, Anthropic's
count_tokens on other providers, and the count of a stream that never reported its usage."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from hydite_common.errors import InvalidRequestError

if TYPE_CHECKING:
    from bpe_openai import Encoding

FALLBACK_ENCODING = "o200k_base"
# Model families by name prefix, for names the library's exact table lacks (dated or variant names).
PREFIX_ENCODINGS = (
    ("gpt-4o", "o200k_base"), ("gpt-4.1", "o200k_base"), ("gpt-4.5", "o200k_base"), ("gpt-5", "o200k_base"),
    ("o1", "o200k_base"), ("o3", "o200k_base"), ("o4", "o200k_base"), ("chatgpt-4o", "o200k_base"),
    ("gpt-4", "cl100k_base"), ("gpt-3.5", "cl100k_base"), ("text-embedding-", "cl100k_base"),
    ("davinci-002", "cl100k_base"), ("babbage-002", "cl100k_base"),
)  # fmt: skip
# OpenAI's chat format adds a few tokens around every message and primes the reply.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3


@cache
def encoding_for(model: str) -> tuple[Encoding, str]:
    """The model's encoding and its name: exact table, then model family, then o200k_base."""
    # Imported on first use: the library loads its tables at import (~70 MB), most data planes never count.
    import bpe_openai

    name = model.rsplit("/", 1)[-1]
    try:
        encoding_name = bpe_openai.encoding_name_for_model(name)
    except (KeyError, bpe_openai.UnsupportedModelError):
        encoding_name = next(
            (enc for prefix, enc in PREFIX_ENCODINGS if name.startswith(prefix)), FALLBACK_ENCODING
        )
    return bpe_openai.get_encoding(encoding_name), encoding_name


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


MAX_COUNTED_CHARS = 1_000_000
"""The most text one count takes (the encoder refuses far longer inputs; a model's context is shorter)."""


def count_tokens(encoding: Encoding, text: str) -> int:
    """Tokens of text as plain text: special-token markers such as <|endoftext|> count as the
    characters they are, as they would in a prompt; text past MAX_COUNTED_CHARS is a 400."""
    if len(text) > MAX_COUNTED_CHARS:
        raise InvalidRequestError(
            f"at most {MAX_COUNTED_CHARS} characters can be counted at once", code="string_above_max_length"
        )
    try:
        return len(encoding.encode(text, disallowed_special=()))
    except ValueError:
        raise InvalidRequestError("this text cannot be counted") from None


def count_chat_tokens(encoding: Encoding, messages: list[Any]) -> int:
    """Tokens of a chat prompt by OpenAI's counting rule (text parts only)."""
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        if not isinstance(message, dict):
            raise InvalidRequestError("every message must be an object", param="messages")
        total += TOKENS_PER_MESSAGE + count_tokens(encoding, _text_of(message.get("content")))
        total += count_tokens(encoding, str(message.get("role", "")))
        if isinstance(message.get("name"), str):
            total += TOKENS_PER_NAME + count_tokens(encoding, message["name"])
    return total
