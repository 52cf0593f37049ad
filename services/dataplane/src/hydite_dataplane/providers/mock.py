"""The built-in `mock` provider: answers in OpenAI's wire format without any network."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.providers.openai import OpenAIChat
from hydite_dataplane.request import InferenceRequest
from hydite_dataplane.upstream.sse import data_event
from hydite_dataplane.upstream.transport import CallTimeouts, UpstreamCall

DEFAULT_REPLY = (
    "Hello from Hydite's mock provider. Point a deployment at a real provider to get real answers."
)


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _prompt_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    parts: list[str] = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
    return " ".join(parts)


class MockResponse:
    """A complete response or SSE stream made in memory."""

    __slots__ = ("_body", "_events", "headers", "status")

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes = b"",
        events: list[bytes] | None = None,
    ) -> None:
        self.status = status
        self.headers = headers
        self._body = body
        self._events = events or []

    @property
    def content_type(self) -> str:
        """The Content-Type header, or "" without one."""
        return self.headers.get("Content-Type", "")

    async def read(self) -> bytes:
        """The whole body."""
        return self._body

    async def chunks(self) -> AsyncIterator[bytes]:
        """The whole body (or every event of the stream) at once."""
        yield b"".join(self._events) if self._events else self._body

    def release(self) -> None:
        """Nothing to release."""


class MockChat(OpenAIChat):
    """Chat for the mock provider: the request's `mock_response` travels with the in-memory call."""

    def upstream_body(self, request: InferenceRequest, target: DeploymentTarget) -> dict[str, Any]:
        """The OpenAI body, plus the reply the mock should give."""
        body = super().upstream_body(request, target)
        if request.options.mock_response is not None:
            body["mock_response"] = request.options.mock_response
        return body


class MockTransport:
    """Builds a chat completion (or its stream) from the request: `mock_response` or a fixed reply."""

    async def send(self, call: UpstreamCall, timeouts: CallTimeouts) -> MockResponse:
        """Answer the call in memory."""
        request = orjson.loads(call.body)
        reply = str(request.get("mock_response") or DEFAULT_REPLY)
        model = str(request.get("model", "mock"))
        created = int(time.time())
        usage = {
            "prompt_tokens": _estimate_tokens(_prompt_text(request.get("messages"))),
            "completion_tokens": _estimate_tokens(reply),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        completion_id = f"chatcmpl-mock{time.monotonic_ns():x}"
        if not request.get("stream"):
            body = {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
            return MockResponse(200, {"Content-Type": "application/json"}, orjson.dumps(body))

        def chunk(delta: dict[str, Any], finish: str | None, with_usage: bool = False) -> bytes:
            payload: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": []
                if with_usage
                else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if with_usage:
                payload["usage"] = usage
            return data_event(orjson.dumps(payload))

        words = reply.split(" ")
        events = [chunk({"role": "assistant", "content": ""}, None)]
        events += [chunk({"content": w if i == 0 else " " + w}, None) for i, w in enumerate(words)]
        events.append(chunk({}, "stop"))
        if (request.get("stream_options") or {}).get("include_usage"):
            events.append(chunk({}, None, with_usage=True))
        events.append(b"data: [DONE]\n\n")
        return MockResponse(200, {"Content-Type": "text/event-stream"}, events=events)
