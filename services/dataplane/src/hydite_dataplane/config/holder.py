"""The holder of the snapshot the data plane serves: swapped whole, read once per request."""

from __future__ import annotations

import time

from hydite_dataplane.config.decode import empty_snapshot
from hydite_dataplane.config.snapshot import Snapshot


class SnapshotHolder:
    """Owns the current snapshot; a request reads `current` once and uses that object."""

    def __init__(self) -> None:
        self.current: Snapshot = empty_snapshot()
        self.ready = False
        self.swapped_at = 0.0  # monotonic time of the last swap (0: none yet)

    def swap(self, snapshot: Snapshot) -> None:
        """Publish a new snapshot atomically (a single reference assignment)."""
        self.current = snapshot
        self.ready = True
        self.swapped_at = time.monotonic()

    def seconds_since_swap(self) -> float:
        """Seconds since the current snapshot was swapped in (0 before the first)."""
        return time.monotonic() - self.swapped_at if self.swapped_at else 0.0
