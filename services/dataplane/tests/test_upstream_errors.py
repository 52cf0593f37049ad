"""One error map for the provider transport: a failure becomes the same gateway error whether it
happens before the head, while a whole body is read or mid-stream; error bodies parse by format."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from hydite_common.errors import UpstreamError, UpstreamTimeoutError
from hydite_dataplane.upstream.errors import ERROR_BODY_PARSERS, error_from_upstream
from hydite_dataplane.upstream.http11 import HttpClientError
from hydite_dataplane.upstream.sse import event_batches
from hydite_dataplane.upstream.transport import CallTimeouts, HttpTransport, UpstreamCall

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 100\r\n\r\n"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Answer], Awaitable[str]]]:
    """serve(answer): a loopback server answering every connection with answer; its URL."""
    servers: list[asyncio.Server] = []

    async def start(answer: Answer) -> str:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def _call(url: str) -> UpstreamCall:
    return UpstreamCall("POST", url, {"Content-Type": "application/json"}, b"{}")


async def _head_then(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rest: bytes, close: bool
) -> None:
    await reader.readuntil(b"\r\n\r\n")
    await reader.readexactly(2)
    writer.write(HEAD + rest)
    await writer.drain()
    if close:
        writer.close()
    else:
        await asyncio.sleep(5)


async def test_an_unreachable_provider_is_an_upstream_error() -> None:
    """Nothing listening: a 502 before any head."""
    transport = HttpTransport(connect_timeout=2)
    with pytest.raises(UpstreamError, match="could not reach the provider"):
        await transport.send(_call("http://127.0.0.1:9/v1/chat/completions"), CallTimeouts(5))
    await transport.close()


async def test_a_body_that_stops_is_a_timeout_and_one_that_breaks_an_upstream_error(
    serve: Callable[[Answer], Awaitable[str]],
) -> None:
    """Reading a whole body: silence past the timeout is a 504, a connection closed early a 502."""
    transport = HttpTransport(connect_timeout=2)
    silent = await serve(lambda r, w: _head_then(r, w, b"data: x", close=False))
    response = await transport.send(_call(silent), CallTimeouts(None, 0.2))
    with pytest.raises(UpstreamTimeoutError, match="did not finish its answer"):
        await response.read()
    response.release()
    broken = await serve(lambda r, w: _head_then(r, w, b"data: x", close=True))
    response = await transport.send(_call(broken), CallTimeouts(5))
    with pytest.raises(UpstreamError, match="answer broke off"):
        await response.read()
    response.release()
    await transport.close()


async def test_a_stream_that_breaks_is_an_upstream_error(serve: Callable[[Answer], Awaitable[str]]) -> None:
    """Mid-stream, after a first event went out, a closed connection is a 502 from the stream."""
    transport = HttpTransport(connect_timeout=2)
    url = await serve(lambda r, w: _head_then(r, w, b"data: first\n\n", close=True))
    response = await transport.send(_call(url), CallTimeouts(5))
    batches = event_batches(response.chunks())
    assert await anext(batches) == [b"data: first\n\n"]
    with pytest.raises(UpstreamError, match="stream broke off"):
        await anext(batches)
    response.release()
    await transport.close()


def test_error_bodies_parse_by_wire_format() -> None:
    """An OpenAI error body gives message, code and param; a non-JSON body its text; secrets redacted."""
    parse = ERROR_BODY_PARSERS["openai"]
    assert parse(b'{"error": {"message": "bad", "code": "x", "param": "model"}}') == ("bad", "x", "model")
    assert parse(b"upstream down") == ("upstream down", None, None)
    error = error_from_upstream(
        401, b'{"error": {"message": "key sk-abcdefghijklmnopqrstuv wrong"}}', {}, credentials=()
    )
    assert error.status == 401 and error.code == "upstream_authentication_error"
    assert "sk-abcdefghijklmnopqrstuv" not in error.message


def test_only_transport_failures_are_mapped() -> None:
    """A failure that is not the transport's passes the map unchanged."""
    from hydite_dataplane.upstream.errors import transport_error

    other = ValueError("not ours")
    assert transport_error(other, "head") is other
    assert isinstance(transport_error(HttpClientError("x"), "head"), UpstreamError)
