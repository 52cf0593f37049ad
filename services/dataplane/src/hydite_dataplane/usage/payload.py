"""Prompts and responses of the keys and teams that store them (`store_prompts`, or the proxy-wide
`store_prompts_in_spend_logs`; `Caller.store_prompts`): one payload per request, out of band —
never inside the usage event —, each part cut to MAX_PART_BYTES of JSON and free of NUL."""

from __future__ import annotations

import time
from typing import Any

import orjson

from hydite_common.events import UsagePayload
from hydite_dataplane.request import InferenceRequest
from hydite_dataplane.usage.estimate import produced_text

MAX_PART_BYTES = 64 * 1024
"""The most of a prompt, and of a response, stored (as JSON); past it the text is cut."""
_PROMPT_FIELDS = ("system", "instructions", "messages", "prompt", "input", "query", "documents")


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {str(k).replace("\x00", ""): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def _bounded(value: Any) -> tuple[Any, bool]:
    """value, or its JSON text cut to MAX_PART_BYTES (as {"truncated_json": ...}); whether it was cut."""
    clean = _without_nul(value)
    data = orjson.dumps(clean)
    if len(data) <= MAX_PART_BYTES:
        return clean, False
    return {"truncated_json": data[:MAX_PART_BYTES].decode(errors="ignore")}, True


def build_payload(
    request: InferenceRequest, answer: dict[str, Any] | None, kept_stream: bytes
) -> UsagePayload:
    """The stored payload of one request: its prompt fields, and the answer (a stream's text)."""
    prompt = {name: request.body[name] for name in _PROMPT_FIELDS if name in request.body}
    response: Any = answer
    if answer is None and kept_stream:
        response = {"stream_text": produced_text(kept_stream)}
    messages, prompt_cut = _bounded(prompt)
    reply, reply_cut = _bounded(response)
    return {
        "request_id": request.request_id,
        "key_hash": request.key_hash,
        "team_id": request.key.team_id,
        "created_ms": time.time() * 1000,
        "messages": messages,
        "response": reply,
        "truncated": prompt_cut or reply_cut,
    }
