"""The holder of the snapshot the data plane serves: swapped whole, read once per request."""

from __future__ import annotations

from hydite_dataplane.config.decode import empty_snapshot
from hydite_dataplane.config.snapshot import Snapshot


class SnapshotHolder:
    """Owns the current snapshot; a request reads `current` once and uses that object."""

    def __init__(self) -> None:
        self.current: Snapshot = empty_snapshot()
        self.ready = False

    def swap(self, snapshot: Snapshot) -> None:
        """Publish a new snapshot atomically (a single reference assignment)."""
        self.current = snapshot
        self.ready = True
