"""How many usage events this process emitted per minute, kept where a kill -9 cannot take it.

The counts live in a small file mapped into memory in the spool directory (`tally-<publisher>.bin`):
a store into it is a store into the page cache, which outlives the process. They are published as
absolute values (`encode_tally`) for `/spend/reconciliation`, which sets them against what was
ingested: an event lost with a killed process still counts as emitted, so the loss shows. A process
started on the same directory publishes what its predecessors counted, then removes their files.
"""

from __future__ import annotations

import logging
import mmap
import os
from pathlib import Path

log = logging.getLogger(__name__)

SLOTS = 128
"""Minutes kept (a slot is reused 128 minutes later)."""
_CELL = 8


class EmittedTally:
    """Per-minute event counts of one publisher, in a mapped file (or in memory, without a directory)."""

    def __init__(self, publisher_id: str, path: Path | None) -> None:
        self.publisher_id = publisher_id
        self.path = path
        size = SLOTS * 2 * _CELL
        if path is None:
            self._map = mmap.mmap(-1, size)
        else:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                os.ftruncate(fd, size)
                self._map = mmap.mmap(fd, size)
            finally:
                os.close(fd)
        self._cells = memoryview(self._map).cast("q")
        self._dirty: set[int] = set()
        self._minute = -1
        """The minute counted last (in the dirty set already)."""

    def count(self, end_time_ms: float) -> None:
        """One event more in the minute of end_time_ms."""
        minute = int(end_time_ms // 60_000)
        slot = (minute % SLOTS) * 2
        cells = self._cells
        if minute != self._minute:  # once a minute, or for an event ending in another minute
            self._minute = minute
            self._dirty.add(minute)
            if cells[slot] != minute:
                cells[slot] = minute
                cells[slot + 1] = 0
        cells[slot + 1] += 1

    def counts(self) -> dict[int, int]:
        """Every minute held (epoch seconds of its start) and its count."""
        cells = self._cells
        return {cells[i] * 60: cells[i + 1] for i in range(0, SLOTS * 2, 2) if cells[i + 1]}

    def take_changed(self) -> dict[int, int]:
        """The minutes counted in since the last call, with their (absolute) counts."""
        if not self._dirty:
            return {}
        changed, self._dirty = self._dirty, set()
        self._minute = -1  # the minute now counting becomes dirty again with its next event
        cells = self._cells
        result = {}
        for minute in changed:
            slot = (minute % SLOTS) * 2
            if cells[slot] == minute:
                result[minute * 60] = cells[slot + 1]
        return result

    def changed_again(self, minutes: dict[int, int]) -> None:
        """Counts taken with take_changed that could not be published: take them next time."""
        self._dirty.update(start // 60 for start in minutes)

    def close(self, *, remove: bool = False) -> None:
        """Unmap; the file stays for a successor to read unless remove is set."""
        self._cells.release()
        self._map.close()
        if remove and self.path is not None:
            self.path.unlink(missing_ok=True)


def earlier_tallies(directory: Path, own: Path | None) -> list[tuple[str, Path]]:
    """(publisher id, file) of the tallies other processes left in directory."""
    found = []
    for path in sorted(directory.glob("tally-*.bin")):
        if path != own:
            found.append((path.name[len("tally-") : -len(".bin")], path))
    return found


def read_tally(path: Path) -> dict[int, int]:
    """The counts a tally file holds (an unreadable one holds none)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        log.error("usage tally %s unreadable (%s)", path, type(exc).__name__)
        return {}
    cells = memoryview(data[: len(data) // _CELL * _CELL]).cast("q")
    return {cells[i] * 60: cells[i + 1] for i in range(0, len(cells) - 1, 2) if cells[i + 1] > 0}
