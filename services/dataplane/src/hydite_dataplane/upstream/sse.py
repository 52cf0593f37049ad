"""Server-sent events framing of a streamed answer: complete events out of the body's pieces."""

from __future__ import annotations

from collections.abc import AsyncIterator


async def event_batches(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    """Complete SSE events, as many as each piece brought, each ending with one blank line;
    LF, CRLF and CR line ends (normalised to LF)."""
    pending = b""
    async for piece in chunks:
        text = pending + piece if pending else piece
        if b"\r" in text:
            held = text.endswith(b"\r")
            if held:  # its LF may come in the next piece
                text = text[:-1]
            text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + (b"\r" if held else b"")
        *events, pending = text.split(b"\n\n")
        batch = [event.lstrip(b"\n") + b"\n\n" for event in events if event.strip(b"\n")]
        if batch:
            yield batch
    rest = pending.strip(b"\r\n")
    if rest:
        yield [rest + b"\n\n"]


async def events(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Complete SSE events one by one."""
    async for batch in event_batches(chunks):
        for event in batch:
            yield event


def data_of(event: bytes) -> bytes:
    """The data of one SSE event (its data: lines joined)."""
    return b"".join(line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:"))


def data_event(payload: bytes) -> bytes:
    """One SSE event carrying payload as its data."""
    return b"data: " + payload + b"\n\n"
