"""Unit tests of the provider HTTP/1.1 client against real sockets: small servers on 127.0.0.1
read each request and answer with crafted raw bytes, split into packets where it matters."""

from __future__ import annotations

import asyncio
import hashlib
import random
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import pytest

from hydite_dataplane.upstream.http11 import (
    MAX_HEAD_BYTES,
    STREAM_HIGH_WATER_BYTES,
    HttpClient,
    HttpClientError,
    HttpResponse,
    Origin,
    split_url,
)
from hydite_dataplane.upstream.sse import events

Handler = Callable[["Peer"], Awaitable[None]]

OK_EMPTY = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


async def settle() -> None:
    """Give the client a few loop turns to read what was written, so the next write is its own packet.

    One turn is not enough: the writer's task is resumed before the reader callbacks of the
    same turn run.
    """
    for _ in range(3):
        await asyncio.sleep(0)


async def until(condition: Callable[[], bool]) -> None:
    """Return once condition() holds; fail after a generous bound."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), 5)


class Peer:
    """One accepted connection, as the test server sees it."""

    def __init__(
        self, server: RawServer, index: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.index = index
        self.reader = reader
        self.writer = writer

    async def read_request(self) -> bytes | None:
        """The next request's raw bytes (head and body), or None once the client closed."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        request = head + await self.reader.readexactly(length)
        self.server.requests.append(request)
        return request

    async def send(self, *parts: bytes) -> None:
        """Write each part as its own packet."""
        for part in parts:
            self.writer.write(part)
            await self.writer.drain()
            await settle()

    async def trickle(self, data: bytes) -> None:
        """Write data one byte per packet."""
        await self.send(*(data[i : i + 1] for i in range(len(data))))

    async def wait_client_close(self) -> None:
        """Return once the client closed the connection (EOF or reset), discarding anything sent."""
        try:
            while await self.reader.read(65536):
                pass
        except ConnectionError:
            pass
        self.server.client_closes += 1

    def reset(self) -> None:
        """Close with a TCP reset instead of a FIN."""
        self.writer.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        self.writer.transport.abort()


class RawServer:
    """A TCP server that hands each accepted connection to a handler written by the test."""

    def __init__(self, handler: Handler, host: str) -> None:
        self.host = host
        self.port = 0
        self.connections = 0
        self.client_closes = 0
        self.requests: list[bytes] = []
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Listen on an ephemeral port."""
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def url(self, path: str = "/") -> str:
        """An absolute URL on this server."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}{path}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            await self._handler(Peer(self, self.connections, reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def stop(self) -> None:
        """Stop listening and end every handler still running."""
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


class Serve(Protocol):
    """Starts a RawServer for the test; the fixture stops it afterwards."""

    def __call__(self, handler: Handler, host: str = ...) -> Awaitable[RawServer]: ...


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """A factory of raw servers, all stopped when the test ends."""
    servers: list[RawServer] = []

    async def start(handler: Handler, host: str = "127.0.0.1") -> RawServer:
        server = RawServer(handler, host)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    """A client with its own pools, closed when the test ends."""
    http = HttpClient(connect_timeout=2.0)
    yield http
    await http.close()


async def call(
    client: HttpClient,
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    total_timeout: float | None = 5.0,
    read_timeout: float | None = None,
) -> HttpResponse:
    """One request; the default total timeout keeps a broken test from hanging."""
    return await client.request(
        method, url, headers or {}, body, total_timeout=total_timeout, read_timeout=read_timeout
    )


async def fetch(client: HttpClient, url: str, **options: Any) -> tuple[int, bytes]:
    """Status and whole body of one request, the response released afterwards."""
    response = await call(client, url, **options)
    try:
        return response.status, await response.read()
    finally:
        response.release()


def answering(*responses: bytes) -> Handler:
    """Answer the n-th request on each connection with responses[n]; the last one repeats."""

    async def handle(peer: Peer) -> None:
        sent = 0
        while await peer.read_request() is not None:
            await peer.send(responses[min(sent, len(responses) - 1)])
            sent += 1

    return handle


def answer_then_close(response: bytes) -> Handler:
    """Answer one request and close the connection."""

    async def handle(peer: Peer) -> None:
        if await peer.read_request() is not None:
            await peer.send(response)

    return handle


def answer_then_hold(*parts: bytes) -> Handler:
    """Answer one request with parts (one packet each), then keep the connection open."""

    async def handle(peer: Peer) -> None:
        if await peer.read_request() is not None:
            await peer.send(*parts)
            await peer.wait_client_close()

    return handle


def chunked(*pieces: bytes) -> bytes:
    """pieces in chunked transfer coding, with the last chunk."""
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def assert_well_formed(events: list[bytes]) -> None:
    """Every event ends with exactly one blank line and uses LF line ends only."""
    for event in events:
        assert event.endswith(b"\n\n") and not event.endswith(b"\n\n\n"), event
        assert b"\r" not in event, event
        assert not event.startswith(b"\n"), event


# ------------------------------------------------------------------------------------ split_url


@pytest.mark.parametrize(
    ("url", "origin", "target"),
    [
        ("http://example.com/v1/chat", Origin(False, "example.com", 80, "example.com"), "/v1/chat"),
        ("http://example.com:80/", Origin(False, "example.com", 80, "example.com"), "/"),
        ("https://api.example.com", Origin(True, "api.example.com", 443, "api.example.com"), "/"),
        ("https://api.example.com:443/x", Origin(True, "api.example.com", 443, "api.example.com"), "/x"),
        ("http://example.com:8080/a", Origin(False, "example.com", 8080, "example.com:8080"), "/a"),
        ("https://example.com:80/a", Origin(True, "example.com", 80, "example.com:80"), "/a"),
        (
            "https://h.example/v1/models?api-version=2024-06-01&x=%20y#frag",
            Origin(True, "h.example", 443, "h.example"),
            "/v1/models?api-version=2024-06-01&x=%20y",
        ),
        ("http://[::1]:8080/v1", Origin(False, "::1", 8080, "[::1]:8080"), "/v1"),
        ("https://[2001:db8::1]/v1", Origin(True, "2001:db8::1", 443, "[2001:db8::1]"), "/v1"),
        ("http://Example.COM/p", Origin(False, "example.com", 80, "example.com"), "/p"),
    ],
)
def test_split_url(url: str, origin: Origin, target: str) -> None:
    """The origin keeps a non-default port in Host, drops a default one, brackets IPv6, keeps the query."""
    assert split_url(url) == (origin, target)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "ws://example.com/socket",
        "unix:///var/run/x.sock",
        "http:///no-host",
        "example.com/no-scheme",
        "",
        "http://example.com:notaport/",
        "http://example.com:70000/",
    ],
)
def test_split_url_rejects(url: str) -> None:
    """Anything but an http(s) URL with a host and a valid port is an HttpClientError."""
    with pytest.raises(HttpClientError):
        split_url(url)


# ------------------------------------------------------------------------------- request bytes


async def test_request_bytes(serve: Serve, client: HttpClient) -> None:
    """The server sees one request line, Host with the port, the caller's headers, identity
    encoding, the body's length and the body."""
    server = await serve(answering(OK_EMPTY))
    body = b'{"model":"m","messages":[]}'
    response = await call(
        client,
        server.url("/v1/chat/completions?api-version=1"),
        method="POST",
        headers={"Authorization": "Bearer sk-test", "Content-Type": "application/json"},
        body=body,
    )
    response.release()
    assert server.requests == [
        b"POST /v1/chat/completions?api-version=1 HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{server.port}\r\n".encode()
        + b"Authorization: Bearer sk-test\r\n"
        + b"Content-Type: application/json\r\n"
        + b"Accept-Encoding: identity\r\n"
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    ]


async def test_request_without_body_says_zero_length(serve: Serve, client: HttpClient) -> None:
    """A GET has a path of / when the URL has none and says Content-Length: 0."""
    server = await serve(answering(OK_EMPTY))
    (await call(client, f"http://127.0.0.1:{server.port}")).release()
    assert server.requests[0].startswith(b"GET / HTTP/1.1\r\n")
    assert server.requests[0].endswith(b"\r\nContent-Length: 0\r\n\r\n")


async def test_caller_accept_encoding_is_kept(serve: Serve, client: HttpClient) -> None:
    """A caller's Accept-Encoding (any case) goes out as given, and identity is not added."""
    server = await serve(answering(OK_EMPTY))
    (await call(client, server.url(), headers={"accept-encoding": "gzip"})).release()
    assert b"\r\naccept-encoding: gzip\r\n" in server.requests[0]
    assert b"identity" not in server.requests[0]


async def test_hop_by_hop_headers_are_dropped(serve: Serve, client: HttpClient) -> None:
    """Host, Content-Length, Transfer-Encoding, Connection and Keep-Alive from the caller never go out."""
    server = await serve(answering(OK_EMPTY))
    response = await call(
        client,
        server.url("/x"),
        method="POST",
        headers={
            "Host": "evil.example",
            "content-length": "999",
            "Transfer-Encoding": "chunked",
            "Connection": "close",
            "Keep-Alive": "timeout=5",
            "X-Kept": "1",
        },
        body=b"abc",
    )
    response.release()
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines == [
        b"POST /x HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}".encode(),
        b"X-Kept: 1",
        b"Accept-Encoding: identity",
        b"Content-Length: 3",
    ]
    assert body == b"abc"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Injected": "a\r\nX-Evil: 1"},
        {"X-Injected": "a\nb"},
        {"X-Injected": "a\rb"},
        {"X-Injected\r\nX-Evil": "1"},
        {"X-Injected\n": "1"},
        {"X-Evil: 1\r\nX-Injected": "1"},
    ],
)
async def test_header_with_cr_or_lf_is_refused(
    serve: Serve, client: HttpClient, headers: dict[str, str]
) -> None:
    """A header name or value with CR or LF raises before anything reaches the server."""
    server = await serve(answering(OK_EMPTY))
    with pytest.raises(HttpClientError):
        await call(client, server.url("/bad"), method="POST", headers=headers, body=b"x")
    (await call(client, server.url("/good"))).release()
    assert server.connections == 1
    assert len(server.requests) == 1
    assert server.requests[0].startswith(b"GET /good ")


async def test_ipv6_host_header(serve: Serve, client: HttpClient) -> None:
    """A request to an IPv6 literal sends Host in bracket form with its port."""
    try:
        server = await serve(answering(OK_EMPTY), host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    assert await fetch(client, server.url("/v6")) == (200, b"")
    assert f"\r\nHost: [::1]:{server.port}\r\n".encode() in server.requests[0]


async def test_bad_url_is_an_http_client_error(client: HttpClient) -> None:
    """A URL the client cannot use is refused with HttpClientError, not another exception type."""
    with pytest.raises(HttpClientError):
        await call(client, "http://127.0.0.1:notaport/")
    with pytest.raises(HttpClientError):
        await call(client, "grpc://127.0.0.1:1/")


# ------------------------------------------------------------------------- Content-Length bodies


async def test_length_body_in_one_packet(serve: Serve, client: HttpClient) -> None:
    """Status, headers (repeated ones kept) and body arrive from a single write."""
    server = await serve(
        answering(
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nSet-Cookie: a=1\r\n"
            b'Set-Cookie: b=2\r\nX-Spaced:   padded value  \r\nContent-Length: 11\r\n\r\n{"ok":true}'
        )
    )
    response = await call(client, server.url())
    assert response.status == 201
    assert response.headers["content-type"] == "application/json"
    assert response.headers.getall("Set-Cookie") == ["a=1", "b=2"]
    assert response.headers["X-Spaced"] == "padded value"
    assert await response.read() == b'{"ok":true}'
    response.release()


async def test_head_and_body_byte_by_byte(serve: Serve, client: HttpClient) -> None:
    """A response written one byte per packet parses the same as one written whole."""
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello world!"

    async def handle(peer: Peer) -> None:
        while await peer.read_request() is not None:
            await peer.trickle(raw)

    server = await serve(handle)
    response = await call(client, server.url())
    assert (response.status, response.headers["Content-Type"]) == (200, "text/plain")
    assert await response.read() == b"hello world!"
    response.release()
    assert await fetch(client, server.url()) == (200, b"hello world!")
    assert server.connections == 1


async def test_length_body_across_writes(serve: Serve, client: HttpClient) -> None:
    """A body split over several packets, the head in its own, is joined in order."""

    async def handle(peer: Peer) -> None:
        while await peer.read_request() is not None:
            await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n", b"abcde", b"fghij", b"klmno")

    server = await serve(handle)
    assert await fetch(client, server.url()) == (200, b"abcdefghijklmno")

    response = await call(client, server.url())
    pieces = [piece async for piece in response.chunks()]
    response.release()
    assert b"".join(pieces) == b"abcdefghijklmno"
    assert server.connections == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\nContent-Type: application/json\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
)
async def test_empty_bodies(serve: Serve, client: HttpClient, raw: bytes) -> None:
    """A zero-length body, a 204 and a 304 read as b"" and leave the connection reusable."""
    server = await serve(answering(raw))
    for _ in range(2):
        response = await call(client, server.url())
        assert await response.read() == b""
        assert [piece async for piece in response.chunks()] == []
        response.release()
    assert server.connections == 1


async def test_stray_bytes_after_empty_body_close_connection(serve: Serve, client: HttpClient) -> None:
    """Bytes after a body that had to be empty mean the connection is out of step: not reused."""
    server = await serve(answering(b"HTTP/1.1 204 No Content\r\nContent-Length: 2\r\n\r\n{}"))
    assert await fetch(client, server.url()) == (204, b"")
    assert await fetch(client, server.url()) == (204, b"")
    assert server.connections == 2


async def test_longer_body_than_announced_closes_connection(serve: Serve, client: HttpClient) -> None:
    """Bytes past Content-Length are cut off and the connection is not reused."""
    server = await serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"))
    assert await fetch(client, server.url()) == (200, b"ok")
    assert await fetch(client, server.url()) == (200, b"ok")
    assert server.connections == 2


# -------------------------------------------------------------------------------- chunked bodies

CHUNKED_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
    b"5\r\nhello\r\n"
    b"1;foo=bar\r\n \r\n"
    b'A;name="quoted;value"\r\nworld, and\r\n'
    b"0003\r\n mo\r\n"
    b"0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n"
)
CHUNKED_BODY = b"hello world, and mo"


async def test_chunked_with_extensions_and_trailers(serve: Serve, client: HttpClient) -> None:
    """Chunk extensions and trailers are skipped, and the connection is reused afterwards."""
    server = await serve(answering(CHUNKED_RESPONSE))
    assert await fetch(client, server.url()) == (200, CHUNKED_BODY)
    assert await fetch(client, server.url()) == (200, CHUNKED_BODY)
    assert server.connections == 1


async def test_chunked_byte_by_byte(serve: Serve, client: HttpClient) -> None:
    """A chunked response written one byte per packet is split at every boundary and still parses."""

    async def handle(peer: Peer) -> None:
        while await peer.read_request() is not None:
            await peer.trickle(CHUNKED_RESPONSE)

    server = await serve(handle)
    response = await call(client, server.url())
    pieces = [piece async for piece in response.chunks()]
    response.release()
    assert b"".join(pieces) == CHUNKED_BODY
    assert await fetch(client, server.url()) == (200, CHUNKED_BODY)
    assert server.connections == 1


async def test_chunked_split_at_every_position(serve: Serve, client: HttpClient) -> None:
    """The response split in two packets at each byte position parses every time on one connection."""

    async def handle(peer: Peer) -> None:
        while (request := await peer.read_request()) is not None:
            cut = int(request.split(b" ", 2)[1].rsplit(b"/", 1)[1])
            await peer.send(CHUNKED_RESPONSE[:cut], CHUNKED_RESPONSE[cut:])

    server = await serve(handle)
    for cut in range(1, len(CHUNKED_RESPONSE)):
        assert await fetch(client, server.url(f"/{cut}")) == (200, CHUNKED_BODY), cut
    assert server.connections == 1


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\nhello\r\n0\r\n\r\n",
        b"\r\nhello\r\n0\r\n\r\n",
        b"-1\r\nab\r\n0\r\n\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloXX\r\n0\r\n\r\n",
        b"5" * (MAX_HEAD_BYTES + 10),
    ],
)
async def test_chunked_malformed(serve: Serve, client: HttpClient, body: bytes) -> None:
    """A chunk size line that is not hex, or data not followed by CRLF, is an HttpClientError."""
    server = await serve(answer_then_hold(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body))
    response = await call(client, server.url(), total_timeout=2.0)
    with pytest.raises(HttpClientError):
        await response.read()
    response.release()


# ---------------------------------------------------------------------------- read-until-close


async def test_read_until_close(serve: Serve, client: HttpClient) -> None:
    """Without length or chunking the body ends at EOF, and the connection is not reused."""

    async def handle(peer: Peer) -> None:
        if await peer.read_request() is not None:
            await peer.send(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst ", b"second ", b"third"
            )

    server = await serve(handle)
    assert await fetch(client, server.url()) == (200, b"first second third")
    response = await call(client, server.url())
    pieces = [piece async for piece in response.chunks()]
    response.release()
    assert b"".join(pieces) == b"first second third"
    assert server.connections == 2


async def test_read_until_close_reset_is_an_error(serve: Serve, client: HttpClient) -> None:
    """A connection reset ends a read-until-close body with an error, not as if it were complete."""
    go = asyncio.Event()

    async def handle(peer: Peer) -> None:
        if await peer.read_request() is not None:
            await peer.send(b"HTTP/1.1 200 OK\r\n\r\npartial")
            await go.wait()
            peer.reset()

    server = await serve(handle)
    response = await call(client, server.url())
    pieces = response.chunks()
    assert await anext(pieces) == b"partial"
    go.set()
    with pytest.raises(HttpClientError):
        await anext(pieces)
    response.release()
    assert server.connections == 1


# ------------------------------------------------------------------------------- interim answers


@pytest.mark.parametrize(
    "parts",
    [
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",),
        (b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        (
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n",
            b"Content-Length: 2\r\n\r\nok",
        ),
    ],
)
async def test_interim_responses_are_skipped(
    serve: Serve, client: HttpClient, parts: tuple[bytes, ...]
) -> None:
    """1xx answers before the real one are skipped, their headers with them."""

    async def handle(peer: Peer) -> None:
        while await peer.read_request() is not None:
            await peer.send(*parts)

    server = await serve(handle)
    response = await call(client, server.url(), method="POST", body=b"{}")
    assert response.status == 200
    assert "Link" not in response.headers
    assert await response.read() == b"ok"
    response.release()
    assert await fetch(client, server.url()) == (200, b"ok")
    assert server.connections == 1


# ------------------------------------------------------------------------------------ keep-alive


async def test_keep_alive_reuses_connection(serve: Serve, client: HttpClient) -> None:
    """Sequential requests to one origin share one TCP connection."""
    server = await serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"))
    for method in ("POST", "GET", "POST"):
        assert await fetch(client, server.url(), method=method, body=b"x") == (200, b"a")
    assert (server.connections, len(server.requests)) == (1, 3)


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na",
        b"HTTP/1.1 200 OK\r\nconnection: Close\r\nContent-Length: 1\r\n\r\na",
        b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\na",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\na\r\n0\r\n\r\n",
    ],
)
async def test_response_that_closes_is_not_reused(serve: Serve, client: HttpClient, raw: bytes) -> None:
    """After Connection: close or an HTTP/1.0 answer the next request opens a new connection."""
    server = await serve(answering(raw))
    assert await fetch(client, server.url()) == (200, b"a")
    assert await fetch(client, server.url()) == (200, b"a")
    assert server.connections == 2


async def test_released_before_body_read_closes_connection(serve: Serve, client: HttpClient) -> None:
    """Releasing a response whose body has not all arrived closes its connection."""
    first_closed = asyncio.Event()

    async def handle(peer: Peer) -> None:
        if peer.index == 1:
            if await peer.read_request() is not None:
                await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
                await peer.wait_client_close()
                first_closed.set()
        else:
            await answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")(peer)

    server = await serve(handle)
    response = await call(client, server.url())
    assert response.status == 200
    response.release()
    await asyncio.wait_for(first_closed.wait(), 5)
    with pytest.raises(HttpClientError):
        await response.read()
    assert await fetch(client, server.url()) == (200, b"ok")
    assert server.connections == 2


async def test_released_after_body_arrived_keeps_connection(serve: Serve, client: HttpClient) -> None:
    """Releasing a response whose body has all arrived, even unread, keeps the connection."""
    server = await serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"))
    response = await call(client, server.url())
    assert await response.read() == b"abc"
    response.release()
    assert await fetch(client, server.url()) == (200, b"abc")
    assert server.connections == 1


def closes_second_request_unanswered(answer: bytes) -> Handler:
    """On the first connection, answer one request, then read the next and close without a word:
    the server closed an idle connection just as the client reused it. Later connections answer."""

    async def handle(peer: Peer) -> None:
        if peer.index > 1:
            await answering(answer)(peer)
            return
        if await peer.read_request() is not None:
            await peer.send(answer)
            await peer.read_request()

    return handle


async def test_post_on_connection_closed_while_idle_is_not_retried(serve: Serve, client: HttpClient) -> None:
    """A POST on a reused connection the server closed raises; the provider may have acted on it."""
    server = await serve(closes_second_request_unanswered(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"))
    assert await fetch(client, server.url(), method="POST", body=b"1") == (200, b"a")
    with pytest.raises(HttpClientError):
        await call(client, server.url(), method="POST", body=b"2")
    assert (server.connections, len(server.requests)) == (1, 2)


async def test_get_on_connection_closed_while_idle_is_retried(serve: Serve, client: HttpClient) -> None:
    """A GET on a reused connection the server closed is sent again, once, on a fresh connection."""
    server = await serve(closes_second_request_unanswered(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"))
    assert await fetch(client, server.url()) == (200, b"a")
    assert await fetch(client, server.url("/again")) == (200, b"a")
    assert server.connections == 2
    assert [request.split(b"\r\n", 1)[0] for request in server.requests] == [
        b"GET / HTTP/1.1",
        b"GET /again HTTP/1.1",
        b"GET /again HTTP/1.1",
    ]


async def test_get_on_fresh_connection_closed_is_not_retried(serve: Serve, client: HttpClient) -> None:
    """A fresh connection that closes without answering is an error even for a GET."""

    async def read_and_close(peer: Peer) -> None:
        await peer.read_request()

    server = await serve(read_and_close)
    with pytest.raises(HttpClientError):
        await call(client, server.url())
    assert server.connections == 1


async def test_pool_drops_connection_the_server_closed(serve: Serve, client: HttpClient) -> None:
    """Once the pool has seen an idle connection close, a POST goes out on a new one and succeeds."""
    server = await serve(answer_then_close(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"))
    assert await fetch(client, server.url(), method="POST", body=b"1") == (200, b"a")
    # The pool forgets a connection as soon as its close is read; wait for that to happen.
    await until(lambda: not client._open)
    assert await fetch(client, server.url(), method="POST", body=b"2") == (200, b"a")
    assert server.connections == 2


async def test_close_closes_pooled_connections(serve: Serve) -> None:
    """HttpClient.close() ends every pooled connection; the server reads EOF."""
    closed = asyncio.Event()

    async def handle(peer: Peer) -> None:
        await answering(OK_EMPTY)(peer)
        closed.set()

    server = await serve(handle)
    http = HttpClient(connect_timeout=2.0)
    assert await fetch(http, server.url()) == (200, b"")
    assert not closed.is_set()
    await http.close()
    await asyncio.wait_for(closed.wait(), 5)
    assert await fetch(http, server.url()) == (200, b"")
    await http.close()
    assert server.connections == 2


# ------------------------------------------------------------------------------ connect failures


async def test_connection_refused(client: HttpClient) -> None:
    """A port with nothing listening is an HttpClientError."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        port = bound.getsockname()[1]
        with pytest.raises(HttpClientError):
            await call(client, f"http://127.0.0.1:{port}/")


async def test_connect_timeout() -> None:
    """A connect that gets no answer raises TimeoutError after connect_timeout."""
    http = HttpClient(connect_timeout=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        (await call(http, "http://10.255.255.1:81/", total_timeout=0.5)).release()
    except TimeoutError as exc:
        if "connecting" not in str(exc):
            pytest.skip("this network accepts connections to a non-routable address")
        assert loop.time() - started < 3
    except HttpClientError:
        pytest.skip("this network refuses a non-routable address at once")
    else:
        pytest.skip("this network answers on a non-routable address")
    finally:
        await http.close()


async def test_connect_timeout_full_backlog() -> None:
    """A listener whose accept queue is full drops the SYN; the connect times out."""
    fillers: list[socket.socket] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        try:
            for _ in range(3):  # never accepted: the queue fills up
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(address)
                fillers.append(filler)
            http = HttpClient(connect_timeout=0.3)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(TimeoutError, match="connecting"):
                await call(http, f"http://127.0.0.1:{address[1]}/")
            assert loop.time() - started < 3
            await http.close()
        finally:
            for filler in fillers:
                filler.close()


# ------------------------------------------------------------------------------------- timeouts


async def test_total_timeout(serve: Serve, client: HttpClient) -> None:
    """A server that never answers gives TimeoutError after about total_timeout, and is hung up on."""
    hung_up = asyncio.Event()

    async def handle(peer: Peer) -> None:
        await peer.read_request()
        await peer.wait_client_close()
        hung_up.set()

    server = await serve(handle)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await call(client, server.url(), total_timeout=0.3)
    assert 0.25 <= loop.time() - started < 3
    await asyncio.wait_for(hung_up.wait(), 5)


async def test_total_timeout_covers_the_body(serve: Serve, client: HttpClient) -> None:
    """total_timeout also bounds a body that never finishes."""
    server = await serve(answer_then_hold(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"))
    response = await call(client, server.url(), total_timeout=0.3)
    with pytest.raises(TimeoutError):
        await response.read()
    response.release()


async def test_read_timeout_waiting_for_head(serve: Serve, client: HttpClient) -> None:
    """read_timeout bounds the wait for the first byte of the answer."""
    server = await serve(answer_then_hold())
    with pytest.raises(TimeoutError):
        await call(client, server.url(), total_timeout=None, read_timeout=0.2)


@pytest.mark.parametrize("reader", ["chunks", "events"])
async def test_read_timeout_mid_stream(serve: Serve, client: HttpClient, reader: str) -> None:
    """A stream that goes silent mid-body raises TimeoutError from chunks() and as events."""
    server = await serve(
        answer_then_hold(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"d\r\ndata: first\n\n\r\n"
        )
    )
    response = await call(client, server.url(), total_timeout=None, read_timeout=0.3)
    stream = response.chunks() if reader == "chunks" else events(response.chunks())
    assert await anext(stream) == b"data: first\n\n"
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await anext(stream)
    assert 0.25 <= loop.time() - started < 3
    response.release()
    await asyncio.wait_for(until(lambda: server.client_closes == 1), 5)


# --------------------------------------------------------------------------------------- events

SSE_EVENTS = [
    b": keep-alive comment\n\n",
    b'data: {"id":1}\n\n',
    b"event: delta\nid: 7\ndata: two\ndata: lines\n\n",
    b"data: after blank lines\n\n",
    b"data: [DONE]\n\n",
]


def sse(line_end: bytes) -> bytes:
    """SSE_EVENTS with the given line end, extra blank lines between two of them, and no blank line
    after the last."""
    text = b"".join(SSE_EVENTS[:3]) + b"\n\n\n" + b"".join(SSE_EVENTS[3:])
    return text[:-2].replace(b"\n", line_end)


def sse_response(body: bytes) -> bytes:
    """A text/event-stream response with a Content-Length body."""
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n" % len(body)


async def collect_events(response: HttpResponse) -> list[bytes]:
    """Every event of a response, then release it."""
    try:
        return [event async for event in events(response.chunks())]
    finally:
        response.release()


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
async def test_events_in_one_packet(serve: Serve, client: HttpClient, line_end: bytes) -> None:
    """Events come out whole and LF-normalised, blank-line runs skipped, the unterminated last one kept."""
    body = sse(line_end)
    server = await serve(answering(sse_response(body) + body))
    events = await collect_events(await call(client, server.url()))
    assert_well_formed(events)
    assert events == SSE_EVENTS


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
async def test_events_split_at_every_position(serve: Serve, client: HttpClient, line_end: bytes) -> None:
    """The stream split in two packets at each byte position yields the same events every time."""
    body = sse(line_end)

    async def handle(peer: Peer) -> None:
        while (request := await peer.read_request()) is not None:
            cut = int(request.split(b" ", 2)[1].rsplit(b"/", 1)[1])
            await peer.send(sse_response(body) + body[:cut], body[cut:])

    server = await serve(handle)
    for cut in range(1, len(body)):
        events = await collect_events(await call(client, server.url(f"/{cut}")))
        assert_well_formed(events)
        assert events == SSE_EVENTS, cut
    assert server.connections == 1


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
async def test_events_byte_by_byte(serve: Serve, client: HttpClient, line_end: bytes) -> None:
    """A chunked stream written one byte per packet yields whole events."""
    body = sse(line_end)

    async def handle(peer: Peer) -> None:
        if await peer.read_request() is not None:
            await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            await peer.trickle(chunked(body))

    server = await serve(handle)
    events = await collect_events(await call(client, server.url()))
    assert_well_formed(events)
    assert events == SSE_EVENTS


async def test_events_crlf_pair_split_across_packets(serve: Serve, client: HttpClient) -> None:
    """A CR at the end of one packet and its LF at the start of the next make one line end."""

    async def handle(peer: Peer) -> None:
        if await peer.read_request() is not None:
            await peer.send(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
                b"data: a\r",
                b"\n\r",
                b"\ndata: b\r\n\r",
                b"\n\r\n\r\ndata: c\r\ndata: d\r",
                b"\n\r",
                b"\n",
            )

    server = await serve(handle)
    events = await collect_events(await call(client, server.url()))
    assert events == [b"data: a\n\n", b"data: b\n\n", b"data: c\ndata: d\n\n"]


async def test_events_last_event_unterminated_at_eof(serve: Serve, client: HttpClient) -> None:
    """A read-until-close stream ending mid-event yields that event with its blank line added."""

    async def handle(peer: Peer) -> None:
        if await peer.read_request() is not None:
            await peer.send(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
                b"data: one\r\n\r\ndata: tw",
                b"o\r\n",
            )

    server = await serve(handle)
    events = await collect_events(await call(client, server.url()))
    assert events == [b"data: one\n\n", b"data: two\n\n"]


# --------------------------------------------------------------------------------- flow control


@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_slow_consumer_gets_every_byte(serve: Serve, client: HttpClient, framing: str) -> None:
    """Megabytes sent at once to a slow reader arrive complete and in order, with reading paused."""
    payload = random.Random(7).randbytes(4 * 1024 * 1024 + 123)

    async def handle(peer: Peer) -> None:
        if await peer.read_request() is None:
            return
        if framing == "length":
            peer.writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload)
        else:
            peer.writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            sizes = random.Random(8)
            at = 0
            while at < len(payload):
                piece = payload[at : at + sizes.randint(1, 200_000)]
                peer.writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                at += len(piece)
            peer.writer.write(b"0\r\n\r\n")
        await peer.writer.drain()
        await peer.wait_client_close()

    server = await serve(handle)
    response = await call(client, server.url(), total_timeout=10.0)
    digest = hashlib.sha256()
    received = 0
    paused = False
    async for piece in response.chunks():
        digest.update(piece)
        received += len(piece)
        paused = paused or response._paused
        await asyncio.sleep(0.002)
    response.release()
    assert received == len(payload)
    assert digest.digest() == hashlib.sha256(payload).digest()
    assert paused, "the reader never fell far enough behind to pause the socket"


async def test_stream_finished_while_paused_leaves_connection_usable(
    serve: Serve, client: HttpClient
) -> None:
    """A body whose last bytes arrive while reading is paused does not leave a paused connection in
    the pool: the next request on it is answered."""
    go = asyncio.Event()
    rest = b"y" * (STREAM_HIGH_WATER_BYTES + 1)

    async def handle(peer: Peer) -> None:
        if await peer.read_request() is None:
            return
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\nxxxx" % (4 + len(rest)))
        await go.wait()
        peer.writer.write(rest)
        await peer.writer.drain()
        await answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")(peer)

    server = await serve(handle)
    response = await call(client, server.url())
    stream = response.chunks()
    head = b""
    while len(head) < 4:
        head += await anext(stream)
    go.set()
    # Nothing is read from the stream here, so the buffer crosses the high-water mark only with
    # the body's very last byte; wait until the whole body has been received.
    await until(lambda: response._done)
    response.release()
    assert await fetch(client, server.url(), total_timeout=2.0) == (200, b"ok")
    assert server.connections == 1


# ------------------------------------------------------------------------------- broken answers


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n",
    ],
)
async def test_body_broken_off(serve: Serve, client: HttpClient, raw: bytes) -> None:
    """A server closing before the body is complete makes read() and chunks() raise HttpClientError."""
    server = await serve(answer_then_close(raw))
    response = await call(client, server.url())
    with pytest.raises(HttpClientError):
        await response.read()
    response.release()
    response = await call(client, server.url())
    with pytest.raises(HttpClientError):
        async for _ in response.chunks():
            pass
    response.release()


async def test_head_broken_off(serve: Serve, client: HttpClient) -> None:
    """A server closing in the middle of the head is an HttpClientError from request()."""
    server = await serve(answer_then_close(b"HTTP/1.1 200 OK\r\nContent-Len"))
    with pytest.raises(HttpClientError):
        await call(client, server.url())


@pytest.mark.parametrize(
    "raw",
    [
        b"hello\r\n\r\n",
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    ],
    ids=["garbage", "http2", "no-status", "no-colon", "bad-length", "negative-length"],
)
async def test_not_http(serve: Serve, client: HttpClient, raw: bytes) -> None:
    """An answer that is not HTTP/1.x raises HttpClientError and the connection is closed."""
    server = await serve(answer_then_hold(raw))
    with pytest.raises(HttpClientError):
        await call(client, server.url())
    await asyncio.wait_for(until(lambda: server.client_closes == 1), 5)


async def test_header_bytes_outside_ascii(serve: Serve, client: HttpClient) -> None:
    """Header bytes outside ASCII (obs-text) are legal and read as latin-1."""
    server = await serve(answering(b"HTTP/1.1 200 OK\r\nX-Bin: \xff\xe9\r\nContent-Length: 1\r\n\r\nz"))
    response = await call(client, server.url())
    assert response.headers["X-Bin"] == "\xff\xe9"
    assert await response.read() == b"z"
    response.release()


@pytest.mark.parametrize("whole", [True, False], ids=["one-write", "no-end"])
async def test_head_too_large(serve: Serve, client: HttpClient, whole: bool) -> None:
    """A head over 64 KB is an HttpClientError, whether or not its end ever arrives."""
    big = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (MAX_HEAD_BYTES + 100) + b"\r\n"
    server = await serve(answer_then_hold(big + b"Content-Length: 0\r\n\r\n" if whole else big))
    with pytest.raises(HttpClientError):
        await call(client, server.url())


async def test_head_just_under_limit(serve: Serve, client: HttpClient) -> None:
    """A head a little under 64 KB is accepted."""
    value = b"a" * (MAX_HEAD_BYTES - 100)
    server = await serve(answering(b"HTTP/1.1 200 OK\r\nX-Big: " + value + b"\r\nContent-Length: 1\r\n\r\nz"))
    response = await call(client, server.url())
    assert len(response.headers["X-Big"]) == len(value)
    assert await response.read() == b"z"
    response.release()


# ---------------------------------------------------------------- strict framing


def _answer_each_request(*answers: bytes) -> Handler:
    """A handler that answers the n-th request on a connection with answers[n]."""

    async def handle(peer: Peer) -> None:
        for answer in answers:
            if await peer.read_request() is None:
                return
            await peer.send(answer)
        await peer.wait_client_close()

    return handle


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5_0\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"HTTP/1.1 2 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    ],
)
async def test_ambiguous_framing_and_status_lines_are_refused(
    serve: Serve, client: HttpClient, answer: bytes
) -> None:
    """Signs, underscores, non-ASCII digits, conflicting lengths, odd status codes and 101 are errors."""
    server = await serve(_answer_each_request(answer))
    with pytest.raises(HttpClientError):
        await fetch(client, server.url("/x"), method="POST")


async def test_repeated_equal_lengths_and_a_non_final_chunked(serve: Serve, client: HttpClient) -> None:
    """Equal repeated lengths are one length; chunked that is not the last coding reads to the close."""

    async def handle(peer: Peer) -> None:
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello")
        await peer.read_request()
        await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nraw bytes")
        peer.writer.close()

    server = await serve(handle)
    assert await fetch(client, server.url("/a"), method="POST") == (200, b"hello")
    assert await fetch(client, server.url("/b"), method="POST") == (200, b"raw bytes")


async def test_a_head_request_has_no_body(serve: Serve, client: HttpClient) -> None:
    """The answer to HEAD ends with its head, whatever Content-Length says; the connection is reused."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
    server = await serve(_answer_each_request(head, head))
    for _ in range(2):
        assert await fetch(client, server.url("/"), method="HEAD") == (200, b"")
    assert server.connections == 1
