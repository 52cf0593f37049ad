"""A fake OpenAI upstream: chat completions (plain and SSE) and OpenAI-shaped errors.

It runs on its own event loop in a background thread, so tests may use sync or
async clients against the gateway while it answers.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

FAKE_USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
STREAM_WORDS = ["Hello", " from", " the", " fake", " upstream"]


@dataclass
class FakeOpenAI:
    """The fake's expected credential and what it has seen."""

    api_key: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    _counter: int = 0

    def next_id(self) -> str:
        """A completion id the test can look for in the relayed response."""
        self._counter += 1
        return f"chatcmpl-fake-{self._counter}"

    def error(self, status: int, message: str, error_type: str, code: str) -> web.Response:
        """An OpenAI error response."""
        body = {"error": {"message": message, "type": error_type, "code": code, "param": None}}
        return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """POST /v1/chat/completions."""
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self.error(401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key")
        body = await request.json(loads=orjson.loads)
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        completion_id = self.next_id()
        created = int(time.time())
        if not body.get("stream"):
            return web.Response(
                body=orjson.dumps(
                    {
                        "id": completion_id,
                        "object": "chat.completion",
                        "created": created,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {
                                    "role": "assistant",
                                    "content": "".join(STREAM_WORDS),
                                    "refusal": None,
                                },
                                "logprobs": None,
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": FAKE_USAGE,
                        "system_fingerprint": "fp_fake",
                    }
                ),
                content_type="application/json",
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }

        events = [chunk({"role": "assistant", "content": ""}, None)]
        events += [chunk({"content": word}, None) for word in STREAM_WORDS]
        events.append(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**chunk({}, None), "choices": [], "usage": FAKE_USAGE})
        for event in events:
            await response.write(b"data: " + orjson.dumps(event) + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def app(self) -> web.Application:
        """The aiohttp app, with and without the /v1 prefix."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/chat/completions", self.chat)
        return app


class FakeServerThread:
    """Runs an aiohttp app on 127.0.0.1 in a daemon thread with its own loop."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(app)
        self.port = 0
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = int(self._runner.addresses[0][1])
        self._started.set()
        self._loop.run_forever()

    def start(self) -> str:
        """Start serving; returns the base URL."""
        self._thread.start()
        self._started.wait(10)
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop the server and its loop."""
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
