"""The fake OpenAI upstream and the bare passthrough proxy the data plane is measured against.

Both are aiohttp + uvloop apps that bench.proxy_bench runs as child processes (`--role upstream`,
`--role bare`). The upstream answers with fixed small bodies: a chat completion, a stream of
STREAM_CHUNKS SSE chunks (+ usage chunk), an embedding list. Under PACED_PREFIX it paces the
stream chunks, so inter-chunk gaps seen by a client mean something. The bare proxy is the ceiling
for a Python data plane: one ClientSession, every POST forwarded to the same path upstream.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

CHAT_PATH = "/v1/chat/completions"
ANTHROPIC_MESSAGES_PATH = "/v1/messages"
EMBEDDINGS_PATH = "/v1/embeddings"
PACED_PREFIX = "/paced"
STREAM_CHUNKS = 50
EMBEDDING_DIMENSIONS = 16

CHAT_RESPONSE = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
    }
)

EMBEDDING_RESPONSE = orjson.dumps(
    {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": 0,
                "embedding": [round(0.01 * (i + 1), 4) for i in range(EMBEDDING_DIMENSIONS)],
            }
        ],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
    }
)


def stream_chunk(index: int) -> bytes:
    """One SSE chunk of the fake streaming completion."""
    delta = {"role": "assistant", "content": "tok "} if index == 0 else {"content": "tok "}
    chunk = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def stream_events() -> tuple[list[bytes], bytes, bytes]:
    """(content chunks, final chunk, usage chunk) as SSE events."""
    final = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    usage = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": STREAM_CHUNKS, "total_tokens": 62},
    }
    return (
        [stream_chunk(i) for i in range(STREAM_CHUNKS)],
        b"data: " + orjson.dumps(final) + b"\n\n",
        b"data: " + orjson.dumps(usage) + b"\n\n",
    )


def _anthropic_event(kind: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"


def anthropic_stream_events() -> list[bytes]:
    """The same answer as `stream_events` in Anthropic's Messages stream: message_start, one text
    block of STREAM_CHUNKS deltas, message_delta with usage, message_stop."""
    message: dict[str, Any] = {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 1},
    }
    block = {"index": 0, "content_block": {"type": "text", "text": ""}}
    delta = {"index": 0, "delta": {"type": "text_delta", "text": "tok "}}
    return [
        _anthropic_event("message_start", {"message": message}),
        _anthropic_event("content_block_start", block),
        *(_anthropic_event("content_block_delta", delta) for _ in range(STREAM_CHUNKS)),
        _anthropic_event("content_block_stop", {"index": 0}),
        _anthropic_event(
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": STREAM_CHUNKS},
            },
        ),
        _anthropic_event("message_stop", {}),
    ]


def serve_upstream(port: int, latency_ms: float, stream_interval_ms: float) -> None:
    """The fake OpenAI upstream; latency_ms before every answer, stream_interval_ms between paced chunks."""
    import uvloop
    from aiohttp import web

    chunks, final, usage = stream_events()
    anthropic_events = anthropic_stream_events()
    latency = latency_ms / 1e3
    interval = stream_interval_ms / 1e3

    async def chat(request: web.Request) -> web.StreamResponse:
        """POST /v1/chat/completions and /paced/v1/chat/completions."""
        body = orjson.loads(await request.read())
        if latency:
            await asyncio.sleep(latency)
        if not body.get("stream"):
            return web.Response(body=CHAT_RESPONSE, content_type="application/json")
        pause = interval if request.path.startswith(PACED_PREFIX) else 0.0
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        for index, chunk in enumerate(chunks):
            if pause and index:
                await asyncio.sleep(pause)
            await response.write(chunk)
        await response.write(final)
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(usage)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def messages(request: web.Request) -> web.StreamResponse:
        """POST /v1/messages: Anthropic's stream of the same answer (the benchmark only streams)."""
        await request.read()
        if latency:
            await asyncio.sleep(latency)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        for event in anthropic_events:
            await response.write(event)
        await response.write_eof()
        return response

    async def embeddings(request: web.Request) -> web.Response:
        """POST /v1/embeddings."""
        await request.read()
        if latency:
            await asyncio.sleep(latency)
        return web.Response(body=EMBEDDING_RESPONSE, content_type="application/json")

    async def health(request: web.Request) -> web.Response:
        """GET /health."""
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(CHAT_PATH, chat)
    app.router.add_post(PACED_PREFIX + CHAT_PATH, chat)
    app.router.add_post(EMBEDDINGS_PATH, embeddings)
    app.router.add_post(ANTHROPIC_MESSAGES_PATH, messages)
    app.router.add_get("/health", health)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=4096)


def serve_bare_proxy(port: int, upstream: str) -> None:
    """The bare passthrough proxy: one ClientSession, any POST forwarded to the same path upstream."""
    import aiohttp
    import uvloop
    from aiohttp import web

    async def forward(request: web.Request) -> web.StreamResponse:
        """Forward the body; return a buffered body, or stream an event stream chunk by chunk."""
        session: aiohttp.ClientSession = request.app["session"]
        body = await request.read()
        async with session.post(
            upstream + request.raw_path, data=body, headers={"Content-Type": "application/json"}
        ) as answer:
            content_type = answer.headers.get("Content-Type", "application/json")
            if not content_type.startswith("text/event-stream"):
                return web.Response(
                    status=answer.status, body=await answer.read(), content_type="application/json"
                )
            response = web.StreamResponse(status=answer.status, headers={"Content-Type": content_type})
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def health(request: web.Request) -> web.Response:
        """GET /health."""
        return web.Response(text="ok")

    async def session_context(app: web.Application) -> Any:
        """One ClientSession for the process lifetime."""
        app["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        yield
        await app["session"].close()

    app = web.Application()
    app.cleanup_ctx.append(session_context)
    app.router.add_get("/health", health)
    app.router.add_post("/{path:.*}", forward)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)
