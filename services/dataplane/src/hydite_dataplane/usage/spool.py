"""The durable local spool: sealed usage batches that could not go to JetStream, on disk, in order.

While NATS is away (or the spool still holds batches from before), every sealed batch is appended
here as it is sealed: one `write` per batch, so a process killed with -9 loses at most the batch
still gathering. A background fsync every `fsync_seconds` guards against the machine going down.
When NATS is back the publisher replays the spool from its oldest record, then returns to memory.

The spool is a directory of segment files `<ns>.seg`, appended in order and deleted once every
record in them is published. A record is `length (u32) | crc32 (u32) | seq (u64) | id length (u16)
| message id | batch bytes`; a batch keeps its message id, so a replay after a restart (by a new
process on the same directory) is deduplicated by JetStream, and by request id after that. A torn
or corrupt tail (a write cut by the machine's crash) ends its segment's replay, loudly.

The directory is locked by the process that uses it: a second process given the same directory
uses a subdirectory of its own rather than interleaving records.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import struct
import tempfile
import time
import zlib
from collections import deque
from pathlib import Path

from hydite_dataplane.usage.outbox import SealedBatch

log = logging.getLogger(__name__)

SEGMENT_BYTES = 8 * 1024 * 1024
"""A segment is closed (and a new one begun) once it is this large."""
_PREFIX = struct.Struct("<II")
"""A record's body length and its CRC-32."""
_BODY = struct.Struct("<QH")
"""The start of a body: the batch's sequence number and its message id's length."""
_LOCK_FILE = ".lock"


def default_spool_dir(node_id: str) -> Path:
    """`hydite-usage-spool/<node id>` in the system's temp directory."""
    return Path(tempfile.gettempdir()) / "hydite-usage-spool" / re.sub(r"[^A-Za-z0-9_.-]", "_", node_id)


class SpoolFullError(Exception):
    """The spool holds max_bytes already."""


def _record(batch: SealedBatch) -> bytes:
    message_id = batch.message_id.encode()
    body = _BODY.pack(batch.seq, len(message_id)) + message_id + batch.data
    return _PREFIX.pack(len(body), zlib.crc32(body)) + body


def _records(data: bytes, name: str, *, report: bool = True) -> tuple[list[SealedBatch], int]:
    """The whole records at the start of data (a segment's bytes from some offset), and how many
    bytes they take; a torn or corrupt record ends them (logged when report is set)."""
    batches: list[SealedBatch] = []
    offset = 0
    while offset + _PREFIX.size <= len(data):
        length, crc = _PREFIX.unpack_from(data, offset)
        body = data[offset + _PREFIX.size : offset + _PREFIX.size + length]
        if len(body) < length or zlib.crc32(body) != crc or length < _BODY.size:
            if report:
                log.error(
                    "usage spool segment %s: %d bytes at offset %d are torn or corrupt; not replayed",
                    name,
                    len(data) - offset,
                    offset,
                )
            break
        seq, id_length = _BODY.unpack_from(body, 0)
        message_id = body[_BODY.size : _BODY.size + id_length].decode(errors="replace")
        batches.append(SealedBatch(seq, message_id, bytes(body[_BODY.size + id_length :])))
        offset += _PREFIX.size + length
    return batches, offset


def _record_size(batch: SealedBatch) -> int:
    return _PREFIX.size + _BODY.size + len(batch.message_id.encode()) + len(batch.data)


class UsageSpool:
    """Batches on disk, oldest first: `append` at the tail, `head` / `published` at the front."""

    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.directory = directory
        self._lock_fd = -1
        self._segments: deque[Path] = deque()
        """Segment files not yet fully published, oldest first (the last may be being written)."""
        self._sizes: dict[Path, int] = {}
        self._write_fd = -1
        self._write_path: Path | None = None
        self._read_path: Path | None = None
        self._read_offset = 0
        self._read_published = 0
        """Bytes of the segment being read whose records are published."""
        self._reading: deque[SealedBatch] = deque()
        self._unsynced = False
        self.records = 0
        """Batches not yet published."""
        self.full_refusals = 0
        """Batches refused because the spool was full."""

    @property
    def bytes(self) -> int:
        """What the spool holds on disk, less what is already published."""
        return sum(self._sizes.values()) - self._read_published

    def open(self) -> None:
        """Lock the directory (or a subdirectory, if another process holds it) and find what an
        earlier process left to replay."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self._lock(self.directory):
            own = self.directory / f"pid-{os.getpid()}-{time.time_ns()}"
            own.mkdir(parents=True, exist_ok=True)
            log.error("usage spool %s is in use by another process; spooling to %s", self.directory, own)
            self.directory = own
            self._lock(own)
        for path in sorted(self.directory.glob("*.seg")):
            data = path.read_bytes()
            batches, _ = _records(data, path.name, report=False)
            if not batches:
                path.unlink(missing_ok=True)
                continue
            self._segments.append(path)
            self._sizes[path] = len(data)
            self.records += len(batches)
        if self.records:
            log.warning(
                "usage spool %s holds %d batches (%d bytes) from before: replaying them",
                self.directory,
                self.records,
                self.bytes,
            )

    def _lock(self, directory: Path) -> bool:
        fd = os.open(directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    @property
    def pending(self) -> bool:
        """Whether any batch waits here."""
        return self.records > 0

    def append(self, batch: SealedBatch) -> None:
        """Write batch at the tail: one write, so it survives this process being killed at once,
        and the machine going down after the next `sync`. SpoolFullError past max_bytes."""
        record = _record(batch)
        if self.bytes + len(record) > self.max_bytes:
            self.full_refusals += 1
            raise SpoolFullError(f"usage spool {self.directory} is full ({self.bytes} bytes)")
        if self._write_path is None or self._sizes[self._write_path] >= SEGMENT_BYTES:
            self._rotate()
        assert self._write_path is not None
        os.write(self._write_fd, record)
        self._sizes[self._write_path] += len(record)
        self.records += 1
        self._unsynced = True

    def _rotate(self) -> None:
        if self._write_fd >= 0:
            os.fsync(self._write_fd)
            os.close(self._write_fd)
        path = self.directory / f"{time.time_ns():020d}.seg"
        self._write_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._write_path = path
        self._sizes[path] = 0
        self._segments.append(path)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def head(self) -> SealedBatch | None:
        """The oldest batch not yet published."""
        while not self._reading and self._segments:
            path = self._segments[0]
            if path != self._read_path:
                self._read_path, self._read_offset, self._read_published = path, 0, 0
            with path.open("rb") as file:
                file.seek(self._read_offset)
                batches, used = _records(file.read(), path.name)
            self._read_offset += used
            self._reading.extend(batches)
            if self._reading or path == self._write_path:
                break  # the segment being written may grow
            self._drop_read_segment()
        return self._reading[0] if self._reading else None

    def published(self, batch: SealedBatch) -> None:
        """JetStream acknowledged batch (the head): it leaves the spool."""
        if not self._reading or self._reading[0] is not batch:
            return
        self._reading.popleft()
        self.records -= 1
        self._read_published += _record_size(batch)
        if not self._reading and self._read_path != self._write_path:
            self.head()  # drops the segment if nothing is left in it

    def _drop_read_segment(self) -> None:
        path = self._segments.popleft()
        self._sizes.pop(path, None)
        path.unlink(missing_ok=True)
        self._read_path, self._read_offset, self._read_published = None, 0, 0

    @property
    def unsynced(self) -> bool:
        """Whether anything was appended since the last fsync."""
        return self._unsynced

    def sync(self) -> None:
        """fsync what was appended since the last sync (from a worker thread: it may take a while)."""
        if self._unsynced and self._write_fd >= 0:
            self._unsynced = False
            os.fsync(self._write_fd)

    def close(self) -> None:
        """fsync and close; a spool with nothing left to replay leaves no segment behind."""
        if self._write_fd >= 0:
            os.fsync(self._write_fd)
            os.close(self._write_fd)
            self._write_fd = -1
        self._write_path = None
        if not self.records:
            for path in self._segments:
                path.unlink(missing_ok=True)
            self._segments.clear()
            self._sizes.clear()
        if self._lock_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = -1
        if not self.records:
            with contextlib.suppress(OSError):
                (self.directory / _LOCK_FILE).unlink()
                self.directory.rmdir()  # only when nothing else is left in it
