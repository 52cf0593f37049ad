"""The HTTP/1.1 client that carries provider calls: keep-alive connections per origin, one
write per request, the response head parsed once, the body read whole or piece by piece.

It knows HTTP only: SSE framing is `upstream.sse`'s, and the gateway's error for a failure is
`upstream.errors`', handed in as `map_error` so a failure is mapped where it happens (connect,
head, body or stream) and the success path pays nothing for it.

aiohttp's client costs about as much CPU per call as the rest of a bare proxy (request and
response objects, timers and a task per call). A provider call needs far less, and this
client is most of why the data plane's overhead stays near a bare passthrough proxy.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal, cast
from urllib.parse import urlsplit

from multidict import CIMultiDict

MAX_HEAD_BYTES = 64 * 1024
STREAM_HIGH_WATER_BYTES = 1024 * 1024
IDLE_CONNECTIONS_PER_ORIGIN = 512
_LINE_WITHOUT_COLON = re.compile(rb"\r\n[^:\r\n]*(?:\r\n|$)")
_IDEMPOTENT = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_HOP_BY_HOP = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive"})


class HttpClientError(Exception):
    """The provider could not be reached, or its answer broke off or was not valid HTTP."""


Phase = Literal["head", "body", "stream"]
"""Where a failure happened: before the response head, reading a whole body, or mid-stream."""

ErrorMap = Callable[[BaseException, Phase], BaseException]
"""Turns a transport failure (HttpClientError or TimeoutError) into the exception to raise."""


def unmapped(error: BaseException, phase: Phase) -> BaseException:
    """The default ErrorMap: failures are raised as they are."""
    return error


class _ClosedBeforeResponse(HttpClientError):
    """The connection closed before a single response byte arrived."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a connection goes: scheme, host and port."""

    tls: bool
    host: str
    port: int
    host_header: str


@functools.lru_cache(maxsize=4096)
def split_url(url: str) -> tuple[Origin, str]:
    """The origin of an absolute http(s) URL and its request target (path and query)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpClientError(f"not an http(s) URL: {parts.scheme}://{parts.hostname or ''}")
    tls = parts.scheme == "https"
    default_port = 443 if tls else 80
    try:
        port = parts.port or default_port
    except ValueError:
        raise HttpClientError("the URL's port is not valid") from None
    host = parts.hostname
    shown_host = f"[{host}]" if ":" in host else host
    host_header = shown_host if port == default_port else f"{shown_host}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Origin(tls, host, port, host_header), target


def _request_head(method: str, target: str, origin: Origin, headers: dict[str, str], length: int) -> bytes:
    lines = [f"{method} {target} HTTP/1.1\r\nHost: {origin.host_header}\r\n"]
    has_encoding = False
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in _HOP_BY_HOP:
            continue
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name or ":" in name:
            raise HttpClientError(f"header {name.strip()!r} has a character HTTP does not allow")
        has_encoding = has_encoding or lowered == "accept-encoding"
        lines.append(f"{name}: {value}\r\n")
    if not has_encoding:
        lines.append("Accept-Encoding: identity\r\n")
    lines.append(f"Content-Length: {length}\r\n\r\n")
    return "".join(lines).encode()


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _header_values(lowered: bytes, head: bytes, name: bytes) -> list[str]:
    """Every value of one header, found in the lower-cased head (name in lower case)."""
    values: list[str] = []
    marker = b"\r\n" + name + b":"
    start = lowered.find(marker)
    while start >= 0:
        value_start = start + len(marker)
        end = lowered.find(b"\r\n", value_start)
        if end < 0:
            end = len(head)
        values.append(head[value_start:end].strip().decode("latin-1"))
        start = lowered.find(marker, end)
    return values


class HttpResponse:
    """One response: status and headers once the head arrived, then the body as it comes."""

    __slots__ = (
        "_body_left",
        "_buffered",
        "_chunk_buffer",
        "_chunk_state",
        "_connection",
        "_done",
        "_error",
        "_framing",
        "_head",
        "_headers",
        "_keep_alive",
        "_loop",
        "_no_body",
        "_paused",
        "_pieces",
        "_raw_head",
        "_read_timeout",
        "_received_any",
        "_streaming",
        "_timer",
        "_waiter",
        "content_type",
        "status",
    )

    def __init__(
        self,
        connection: _Connection,
        loop: asyncio.AbstractEventLoop,
        total_timeout: float | None,
        read_timeout: float | None,
        no_body: bool = False,
    ) -> None:
        self._connection = connection
        self._no_body = no_body  # the answer to a HEAD request
        self._loop = loop
        self._head = bytearray()
        self._framing = ""  # "", "length", "chunked" or "close" once the head is parsed
        self._body_left = 0
        self._chunk_buffer = b""
        self._chunk_state = 0  # 0 size line, 1 data, 2 CRLF after data, 3 trailer
        self._pieces: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._streaming = False
        self._done = False
        self._keep_alive = True
        self._received_any = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._read_timeout = read_timeout
        self._timer = loop.call_later(total_timeout, self._time_out) if total_timeout else None
        self.status = 0
        self._raw_head = b""
        self.content_type = ""
        self._headers: CIMultiDict[str] | None = None

    # ---------------------------------------------------------------- fed by the connection

    def feed(self, data: bytes) -> None:
        """Bytes from the socket."""
        self._received_any = True
        if not self._framing:
            head = self._head
            head += data
            end = head.find(b"\r\n\r\n")
            if end < 0 or end > MAX_HEAD_BYTES:
                if end >= 0 or len(head) > MAX_HEAD_BYTES:
                    self._fail(HttpClientError("the provider's response head is too large"))
                return
            data = bytes(head[end + 4 :])
            try:
                self._parse_head(bytes(head[:end]))
            except (ValueError, UnicodeDecodeError):
                self._fail(HttpClientError("the provider's response is not valid HTTP"))
                return
            if not self._framing:  # an interim 1xx response; the real one follows
                del head[:]
                if data:
                    self.feed(data)
                return
            self._wake()
            if self._framing == "length" and not self._body_left:
                if data:  # bytes past a body that had to be empty: the connection is out of step
                    self._keep_alive = False
                self._finish()
                return
        if data:
            if self._framing == "chunked":
                self._feed_chunked(data)
            elif self._framing == "length":
                if len(data) >= self._body_left:
                    if len(data) > self._body_left:
                        self._keep_alive = False
                        data = data[: self._body_left]
                    self._push(data)
                    self._finish()
                    return
                self._body_left -= len(data)
                self._push(data)
            else:
                self._push(data)

    def feed_eof(self, error: BaseException | None) -> None:
        """The connection closed."""
        if self._done:
            return
        if self._framing == "close" and error is None:
            self._keep_alive = False
            self._finish()
        elif not self._received_any:
            self._fail(_ClosedBeforeResponse("the provider closed the connection without answering"))
        else:
            reason = f": {type(error).__name__}" if error is not None else ""
            self._fail(HttpClientError(f"the connection closed before the response was complete{reason}"))

    def _parse_head(self, head: bytes) -> None:
        # Only the status line and the framing headers are read here; the rest are parsed
        # if someone asks for them (providers send twenty-odd headers the relay never reads).
        line_end = head.find(b"\r\n")
        status_line = (head if line_end < 0 else head[:line_end]).decode("latin-1")
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not _is_digits(code) or rest[3:4] not in ("", " "):
            raise ValueError(status_line)
        if line_end >= 0 and _LINE_WITHOUT_COLON.search(head, line_end):
            raise ValueError("a header line without a colon")
        status = int(code)
        if status == 101:
            raise ValueError("a protocol switch was not asked for")
        if 100 <= status < 200:
            return
        self.status, self._raw_head = status, head
        lowered = head.lower()
        content_types = _header_values(lowered, head, b"content-type")
        self.content_type = content_types[0] if content_types else ""
        connection = _header_values(lowered, head, b"connection")
        if version == "HTTP/1.0" or any("close" in value.lower() for value in connection):
            self._keep_alive = False
        codings = _header_values(lowered, head, b"transfer-encoding")
        lengths = set(_header_values(lowered, head, b"content-length"))
        if status in (204, 304) or self._no_body:
            self._framing, self._body_left = "length", 0
        elif codings:
            # Only a final "chunked" frames the body; any other coding runs to the close.
            if codings[-1].rsplit(",", 1)[-1].strip().lower() == "chunked":
                self._framing = "chunked"
            else:
                self._framing, self._keep_alive = "close", False
        elif lengths:
            length = lengths.pop()
            if lengths or not _is_digits(length):
                raise ValueError(length)
            self._framing, self._body_left = "length", int(length)
        else:
            self._framing, self._keep_alive = "close", False

    @property
    def headers(self) -> CIMultiDict[str]:
        """The response headers (parsed on first use)."""
        if self._headers is None:
            headers: CIMultiDict[str] = CIMultiDict()
            for line in self._raw_head.decode("latin-1").split("\r\n")[1:]:
                name, _, value = line.partition(":")
                headers.add(name.strip(), value.strip())
            self._headers = headers
        return self._headers

    def _feed_chunked(self, data: bytes) -> None:
        # Everything decoded from one read is pushed as one piece: a stream's events often
        # arrive many chunks to a read, and the relay then handles them in one go.
        buffer = self._chunk_buffer + data if self._chunk_buffer else data
        position, available = 0, len(buffer)
        decoded: list[bytes] = []
        while position < available:
            if self._chunk_state == 1:
                take = min(self._body_left, available - position)
                decoded.append(buffer[position : position + take])
                position += take
                self._body_left -= take
                if not self._body_left:
                    self._chunk_state = 2
                continue
            end = buffer.find(b"\r\n", position)
            if end < 0:
                if available - position > MAX_HEAD_BYTES:
                    self._fail(HttpClientError("the provider's chunked body is malformed"))
                    return
                break
            line = buffer[position:end]
            position = end + 2
            if self._chunk_state == 2:
                if line:
                    self._fail(HttpClientError("the provider's chunked body is malformed"))
                    return
                self._chunk_state = 0
            elif self._chunk_state == 0:
                field = line.split(b";", 1)[0].strip()
                if not field or field.strip(_HEX_DIGITS):  # int() alone also takes "-1", "0x1", "1_0"
                    self._fail(HttpClientError("the provider's chunked body is malformed"))
                    return
                size = int(field, 16)
                if not size:
                    self._chunk_state = 3
                    continue
                data_end = position + size
                if buffer[data_end : data_end + 2] == b"\r\n":  # the whole chunk is here
                    decoded.append(buffer[position:data_end])
                    position = data_end + 2
                else:
                    self._body_left, self._chunk_state = size, 1
            elif not line:  # the blank line that ends the trailer
                if position < available:
                    self._keep_alive = False
                if decoded:
                    self._push(b"".join(decoded))
                self._finish()
                return
        self._chunk_buffer = buffer[position:]
        if decoded:
            self._push(decoded[0] if len(decoded) == 1 else b"".join(decoded))

    def _push(self, piece: bytes) -> None:
        self._pieces.append(piece)
        self._buffered += len(piece)
        if self._streaming and self._buffered > STREAM_HIGH_WATER_BYTES and not self._paused:
            self._paused = True
            self._connection.pause_reading()
        self._wake()

    def _finish(self) -> None:
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
        if self._paused:  # the connection may go back to the pool; it must read again
            self._paused = False
            self._connection.resume_reading()
        self._connection.response_finished(self._keep_alive)
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if self._done:
            return
        self._error = error
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
        self._connection.abort()
        self._wake()

    def _time_out(self) -> None:
        self._fail(TimeoutError())

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # ---------------------------------------------------------------- read by the caller

    async def _wait(self) -> None:
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_later(self._read_timeout, self._time_out) if self._read_timeout else None
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()

    def _raised(self, phase: Phase) -> BaseException:
        assert self._error is not None
        return self._connection.map_error(self._error, phase)

    async def wait_head(self) -> None:
        """Return once status and headers are known (failures raised unmapped: the client maps them)."""
        while not self._framing:
            if self._error is not None:
                raise self._error
            waiter = self._waiter = self._loop.create_future()
            if self._read_timeout:
                timer = self._loop.call_later(self._read_timeout, self._time_out)
                try:
                    await waiter
                finally:
                    timer.cancel()
            else:
                await waiter

    async def read(self) -> bytes:
        """The whole body."""
        while not self._done:
            await self._wait()
        if self._error is not None:
            raise self._raised("body")
        pieces = self._pieces
        body = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        pieces.clear()
        return body

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body piece by piece, as it arrives."""
        self._streaming = True
        pieces = self._pieces
        while True:
            while pieces:
                piece = pieces.popleft()
                self._buffered -= len(piece)
                if self._paused and self._buffered < STREAM_HIGH_WATER_BYTES // 2:
                    self._paused = False
                    self._connection.resume_reading()
                yield piece
            if self._error is not None:
                raise self._raised("stream")
            if self._done:
                return
            await self._wait()

    def release(self) -> None:
        """Done with the response: a body not read to its end closes the connection."""
        if self._timer is not None:
            self._timer.cancel()
        if not self._done:
            self._done = True
            self._error = self._error or HttpClientError("the response was released")
            self._connection.abort()


class _Connection(asyncio.Protocol):
    """One keep-alive connection; carries one response at a time."""

    def __init__(self, pool: HttpClient, origin: Origin) -> None:
        self._pool = pool
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.response: HttpResponse | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self.map_error = pool.map_error

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:
            self.abort()  # bytes nobody asked for: the connection is no longer in a known state
            return
        response.feed(data)

    def eof_received(self) -> bool:
        self._closed()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed(exc)

    def _closed(self, error: BaseException | None = None) -> None:
        self.closed = True
        response, self.response = self.response, None
        if response is not None:
            response.feed_eof(error)
        self._pool.forget(self)

    def send(self, head: bytes, body: bytes, response: HttpResponse) -> None:
        """Write one request; its response will be fed to response."""
        assert self.transport is not None
        if self.closed:
            response.feed_eof(None)
            return
        self.response = response
        if len(body) < 65536:
            self.transport.write(head + body)
        else:
            self.transport.writelines((head, body))

    def response_finished(self, keep_alive: bool) -> None:
        """The response is complete: back to the pool, or closed."""
        self.response = None
        if keep_alive and not self.closed:
            self._pool.put_back(self)
        else:
            self.abort()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def abort(self) -> None:
        """Close at once (nothing more will be read or written on it)."""
        self.response = None
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()
            self._pool.forget(self)


class HttpClient:
    """Keep-alive connection pools per origin, for provider calls."""

    def __init__(
        self, *, connect_timeout: float, idle_seconds: float = 15.0, map_error: ErrorMap = unmapped
    ) -> None:
        self.map_error = map_error
        self._connect_timeout = connect_timeout
        self._idle_seconds = idle_seconds
        self._idle: dict[Origin, list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._tls: ssl.SSLContext | None = None

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
            self._tls.set_alpn_protocols(["http/1.1"])
        return self._tls

    def _idle_connection(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        if idle:
            now = time.monotonic()
            while idle:
                connection = idle.pop()
                if connection.closed:
                    continue
                if now - connection.idle_since > self._idle_seconds:
                    connection.abort()
                    continue
                connection.reused = True
                return connection
        return None

    async def _connect(self, origin: Origin, loop: asyncio.AbstractEventLoop) -> _Connection:
        try:
            transport, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self, origin),
                    origin.host,
                    origin.port,
                    ssl=self._tls_context() if origin.tls else None,
                    server_hostname=origin.host if origin.tls else None,
                ),
                self._connect_timeout,
            )
        except TimeoutError:
            raise TimeoutError("connecting to the provider timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise HttpClientError(f"could not connect: {type(exc).__name__}") from None
        # uvloop may call connection_made only after create_connection has returned.
        connection.connection_made(transport)
        if connection.closed:
            raise HttpClientError("the provider closed the connection at once")
        self._open.add(connection)
        return connection

    async def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes,
        *,
        total_timeout: float | None,
        read_timeout: float | None,
    ) -> HttpResponse:
        """Send a request; return once its status and headers arrived.

        An idempotent request on a reused connection that the server closed while idle is
        retried once on a fresh one. A POST is not: the provider may have acted on it, and
        the router decides whether to try again.
        """
        try:
            loop = asyncio.get_running_loop()
            origin, target = split_url(url)
            head = _request_head(method, target, origin, headers, len(body))
            for attempt in range(2):
                connection = self._idle_connection(origin) or await self._connect(origin, loop)
                response = HttpResponse(connection, loop, total_timeout, read_timeout, method == "HEAD")
                connection.send(head, body, response)
                try:
                    if not response._framing:
                        await response.wait_head()
                except _ClosedBeforeResponse:
                    if not connection.reused or attempt or method not in _IDEMPOTENT:
                        raise
                    continue
                except BaseException:
                    response.release()
                    raise
                return response
        except (HttpClientError, TimeoutError) as exc:
            raise self.map_error(exc, "head") from None
        raise AssertionError("unreachable")

    def put_back(self, connection: _Connection) -> None:
        """A connection whose response is complete waits for the next request."""
        idle = self._idle.setdefault(connection.origin, [])
        if len(idle) >= IDLE_CONNECTIONS_PER_ORIGIN:
            connection.abort()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    def forget(self, connection: _Connection) -> None:
        """A closed connection leaves the pool."""
        self._open.discard(connection)

    async def close(self) -> None:
        """Close every connection."""
        for connection in list(self._open):
            connection.abort()
        self._idle.clear()
        await asyncio.sleep(0)
