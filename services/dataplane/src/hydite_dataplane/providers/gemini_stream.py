"""Gemini's streamGenerateContent (SSE, one GenerateContentResponse per `data:` event) -> OpenAI
chat.completion.chunk events (pure, stateful per request).

Gemini sends no end marker, and a translator hears nothing when the upstream ends: `data: [DONE]`
goes out once every candidate has finished (after the usage chunk, when the client asked for one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from hydite_common.errors import HyditeError
from hydite_dataplane.providers.gemini_response import (
    candidate_parts,
    finish_reason,
    logprobs,
    openai_usage,
    prompt_blocked,
    token_usage,
)
from hydite_dataplane.request import TokenUsage
from hydite_dataplane.upstream.errors import error_from_upstream
from hydite_dataplane.upstream.sse import data_event, data_of

Json = dict[str, Any]

DONE = b"data: [DONE]\n\n"


def stream_error(payload: Mapping[str, Any]) -> HyditeError:
    """The gateway error for a Gemini error object sent inside a stream (already redacted)."""
    error = payload.get("error")
    status = error.get("code") if isinstance(error, dict) else None
    status = status if isinstance(status, int) and status >= 400 else 502
    return error_from_upstream(status, orjson.dumps(payload), {}, "gemini", credentials=())


class GeminiChatStream:
    """A StreamTranslator from Gemini stream events to chat completion chunks."""

    def __init__(
        self, *, model: str, created: int, fallback_id: str, candidates: int, wants_usage: bool
    ) -> None:
        self._model = model
        self._created = created
        self._id = ""
        self._fallback_id = fallback_id
        self._candidates = max(1, candidates)
        self._wants_usage = wants_usage
        self._started: set[int] = set()
        self._calls: dict[int, int] = {}  # candidate index -> tool calls sent so far
        self._finished: set[int] = set()
        self._usage = TokenUsage()
        self._ended = False

    def translate(self, event: bytes) -> list[bytes]:
        """The chunks for one Gemini event; nothing once the stream has ended."""
        if self._ended:
            return []
        try:
            payload = orjson.loads(data_of(event))
        except orjson.JSONDecodeError:
            return []  # a comment or keep-alive
        if isinstance(payload, list) and len(payload) == 1:
            payload = payload[0]
        if not isinstance(payload, dict):
            return []
        if payload.get("error"):
            self._ended = True
            return [data_event(orjson.dumps(stream_error(payload).to_body()))]
        if not self._id:
            response_id = payload.get("responseId")
            self._id = response_id if isinstance(response_id, str) and response_id else self._fallback_id
        version = payload.get("modelVersion")
        if isinstance(version, str) and version:
            self._model = version
        if isinstance(payload.get("usageMetadata"), dict):
            self._usage = self._usage.updated_by(token_usage(payload["usageMetadata"]))
        choices = self._choices(payload)
        events = [self._chunk(choices)] if choices else []
        if len(self._finished) >= self._candidates:
            self._ended = True
            if self._wants_usage:
                events.append(self._chunk([], usage=openai_usage(self._usage)))
            events.append(DONE)
        return events

    def _choices(self, payload: Mapping[str, Any]) -> list[Json]:
        if prompt_blocked(payload):
            self._finished.update(range(self._candidates))
            return [self._choice(0, {}, "content_filter", None)]
        candidates = payload.get("candidates")
        choices = []
        for candidate in candidates if isinstance(candidates, list) else []:
            if not isinstance(candidate, dict):
                continue
            index = candidate.get("index")
            index = index if isinstance(index, int) and index >= 0 else 0
            sent = self._calls.get(index, 0)
            parts = candidate_parts(candidate, self._id, first_call=sent)
            delta: Json = {}
            if parts.text:
                delta["content"] = parts.text
            if parts.reasoning:
                delta["reasoning_content"] = parts.reasoning
            if parts.tool_calls:
                delta["tool_calls"] = [
                    {"index": sent + number, **call} for number, call in enumerate(parts.tool_calls)
                ]
                self._calls[index] = sent + len(parts.tool_calls)
            reason = finish_reason(candidate.get("finishReason"), index in self._calls)
            if reason is not None:
                self._finished.add(index)
            if delta or reason is not None or index not in self._started:
                choices.append(self._choice(index, delta, reason, logprobs(candidate)))
        return choices

    def _choice(self, index: int, delta: Json, reason: str | None, found_logprobs: Json | None) -> Json:
        if index not in self._started:
            self._started.add(index)
            delta = {"role": "assistant", **({"content": ""} if not delta else {}), **delta}
        return {"index": index, "delta": delta, "finish_reason": reason, "logprobs": found_logprobs}

    def _chunk(self, choices: list[Json], usage: Json | None = None) -> bytes:
        chunk: Json = {
            "id": self._id or self._fallback_id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if usage is not None:
            chunk["usage"] = usage
        return data_event(orjson.dumps(chunk))
