"""Counting a stream that never reported its usage: the text its events carried, in every provider's
stream format, and the prompt, with the bundled tokenizer; nothing that was not relayed is counted."""

from __future__ import annotations

import orjson

from hydite_dataplane.encodings import encoding_for
from hydite_dataplane.request import TokenUsage
from hydite_dataplane.usage.estimate import estimated_stream_usage, produced_text, prompt_tokens


def _sse(*events: object, named: str = "") -> bytes:
    prefix = f"event: {named}\n".encode() if named else b""
    return (
        b"".join(prefix + b"data: " + orjson.dumps(event) + b"\n\n" for event in events) + b"data: [DONE]\n\n"
    )


def _tokens(text: str) -> int:
    encoding, _ = encoding_for("gpt-4o-mini")
    return len(encoding.encode(text, disallowed_special=()))


def test_openai_chunks_give_content_reasoning_and_tool_arguments() -> None:
    stream = _sse(
        {"choices": [{"delta": {"role": "assistant", "content": ""}}]},
        {"choices": [{"delta": {"reasoning_content": "Think. "}}]},
        {"choices": [{"delta": {"content": "Hello"}}]},
        {"choices": [{"delta": {"tool_calls": [{"function": {"name": "f", "arguments": '{"a":'}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"function": {"arguments": "1}"}}]}}]},
    )
    assert produced_text(stream) == 'Think. Hello{"a":1}'


def test_anthropic_events_give_text_thinking_and_tool_input_but_not_signatures() -> None:
    stream = _sse(
        {"type": "message_start", "message": {"id": "m", "role": "assistant", "content": []}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm."}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "c2ln"},
        },
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": " Yes"}},
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": "{}"},
        },
    )
    assert produced_text(stream) == "Hmm. Yes{}"


def test_gemini_chunks_give_parts_and_function_arguments() -> None:
    stream = _sse(
        {"candidates": [{"content": {"parts": [{"text": "Hi", "thoughtSignature": "x"}], "role": "model"}}]},
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {"q": 1}}}]}}]},
    )
    assert produced_text(stream) == 'Hi{"q":1}'


def test_responses_events_count_deltas_once_not_their_summaries() -> None:
    stream = _sse(
        {"type": "response.created", "response": {"output": [], "instructions": "be brief"}},
        {"type": "response.output_text.delta", "delta": "One"},
        {"type": "response.output_text.delta", "delta": " two"},
        {"type": "response.output_text.done", "text": "One two"},
        {"type": "response.completed", "response": {"output": [{"content": [{"text": "One two"}]}]}},
    )
    assert produced_text(stream) == "One two"


def test_a_frame_cut_where_the_kept_bytes_end_is_left_out() -> None:
    stream = _sse({"choices": [{"delta": {"content": "whole"}}]}) + b'data: {"choices": [{"delta": {"con'
    assert produced_text(stream) == "whole"


def test_no_usage_at_all_counts_prompt_and_relayed_output_only() -> None:
    body = {"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi there"}]}
    stream = _sse({"choices": [{"delta": {"content": "Hello from the fake"}}]})
    usage = estimated_stream_usage("gpt-4o-mini", body, None, stream)
    assert (
        usage.prompt_tokens == prompt_tokens("gpt-4o-mini", body) == 3 + 2 * 3 + _tokens("Be kind.Hi there")
    )
    assert usage.completion_tokens == _tokens("Hello from the fake")
    assert estimated_stream_usage("gpt-4o-mini", body, None, b"").completion_tokens == 0


def test_a_provider_count_from_the_stream_start_is_kept() -> None:
    """Anthropic reports its input count at message_start: that count stands, the output is counted."""
    stream = _sse(
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "four words right here"}}
    )
    reported = TokenUsage(prompt_tokens=1234, completion_tokens=1, cached_tokens=1000)
    usage = estimated_stream_usage("claude-sonnet-4-5", {"messages": []}, reported, stream)
    assert usage.prompt_tokens == 1234 and usage.cached_tokens == 1000
    assert usage.completion_tokens == _tokens("four words right here")
