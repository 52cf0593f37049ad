"""The latest config snapshot, recent deltas, the rows left out of it, and the streams waiting.

Pure state: no gRPC, no SQL. The follower feeds it committed changes; each
stream asks it what to send to move a data plane from its version to the head.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from hydite.config.v1 import config_pb2 as pb
from hydite_common.config_types import CONFIG_SCHEMA_VERSION

ResourceId = tuple[str, str]  # (type_url, name)
Changes = dict[ResourceId, pb.Resource | None]  # None: removed
QuarantineChanges = Mapping[ResourceId, str | None]  # the reason, or None: no longer quarantined


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A resource whose row cannot be built: not in the snapshot (or stood in for, blocked)."""

    type_url: str
    name: str
    reason: str
    since: datetime


@dataclass(frozen=True, slots=True)
class DeltaEntry:
    """The changes that move the snapshot from from_version to version."""

    from_version: int
    version: int
    changes: Changes


class SnapshotCache:
    """Holds the head snapshot and a bounded history of deltas; wakes subscribers on change."""

    def __init__(
        self, *, history: int = 1024, chunk_bytes: int = 1 << 20, fixed: Sequence[pb.Resource] = ()
    ) -> None:
        """fixed: resources every snapshot holds that come from this service's settings, not rows."""
        self.version = 0
        self._fixed = tuple(fixed)
        self.loaded = False
        self._resources: dict[str, dict[str, pb.Resource]] = {}
        self._history: deque[DeltaEntry] = deque(maxlen=history)
        self._subscribers: set[asyncio.Event] = set()
        self._chunk_bytes = chunk_bytes
        self._nonces = itertools.count(1)
        self._quarantined: dict[ResourceId, Quarantined] = {}

    def reset(
        self,
        version: int,
        resources: dict[str, list[pb.Resource]],
        quarantined: QuarantineChanges | None = None,
        now: datetime | None = None,
    ) -> None:
        """Replace everything with a full snapshot at version (history is dropped), and the
        quarantine with `quarantined` (id -> reason)."""
        self._resources = {t: {r.name: r for r in rs} for t, rs in resources.items()}
        for resource in self._fixed:
            self._resources.setdefault(resource.body.type_url, {})[resource.name] = resource
        self._history.clear()
        previous, self._quarantined = self._quarantined, {}
        self._update_quarantine(quarantined or {}, previous, now)
        self.version = version
        self.loaded = True
        self._wake()

    def apply(
        self,
        version: int,
        changes: Changes,
        quarantined: QuarantineChanges | None = None,
        now: datetime | None = None,
    ) -> None:
        """Move the head to version by applying changes, and update the quarantine of the
        resources named in `quarantined`; ignored unless newer than the head."""
        if version <= self.version:
            return
        for (type_url, name), resource in changes.items():
            collection = self._resources.setdefault(type_url, {})
            if resource is None:
                collection.pop(name, None)
            else:
                collection[name] = resource
        self._update_quarantine(quarantined or {}, self._quarantined, now)
        self._history.append(DeltaEntry(self.version, version, changes))
        self.version = version
        self._wake()

    def _update_quarantine(
        self, updates: QuarantineChanges, previous: Mapping[ResourceId, Quarantined], now: datetime | None
    ) -> None:
        at = now or datetime.now(UTC)
        for resource_id, reason in updates.items():
            if reason is None:
                self._quarantined.pop(resource_id, None)
                continue
            earlier = previous.get(resource_id)
            # A resource that stays quarantined keeps the time it first was.
            since = earlier.since if earlier is not None else at
            self._quarantined[resource_id] = Quarantined(*resource_id, reason, since)

    def quarantined(self) -> list[Quarantined]:
        """The resources left out of (or stood in for in) the head snapshot, oldest first."""
        return sorted(self._quarantined.values(), key=lambda q: (q.since, q.type_url, q.name))

    def is_quarantined(self, resource_id: ResourceId) -> bool:
        """Whether the head snapshot leaves this resource out (or stands in for it)."""
        return resource_id in self._quarantined

    def resource(self, resource_id: ResourceId) -> pb.Resource | None:
        """The head snapshot's resource with this id, if it holds one."""
        type_url, name = resource_id
        return self._resources.get(type_url, {}).get(name)

    def resources_of(self, type_url: str) -> list[pb.Resource]:
        """The head snapshot's resources of one type, by name."""
        collection = self._resources.get(type_url, {})
        return [collection[name] for name in sorted(collection)]

    def resource_count(self) -> int:
        """How many resources the head snapshot holds."""
        return sum(len(c) for c in self._resources.values())

    def subscribe(self) -> asyncio.Event:
        """An event set whenever the head moves; the subscriber clears it."""
        event = asyncio.Event()
        self._subscribers.add(event)
        return event

    def unsubscribe(self, event: asyncio.Event) -> None:
        """Stop waking this subscriber."""
        self._subscribers.discard(event)

    def _wake(self) -> None:
        for event in self._subscribers:
            event.set()

    def next_nonce(self) -> str:
        """A nonce unique within this control-plane process."""
        return str(next(self._nonces))

    def responses_since(self, version: int | None) -> tuple[list[pb.StreamResponse], int]:
        """What moves a data plane at version (None: holds nothing) to the head, and the head's version.

        Deltas when the history still covers version, else a chunked full snapshot.
        """
        head = self.version
        if version is None:
            return self._full_snapshot(), head
        if version == head:
            return [], head
        merged = self._merged_changes_since(version)
        if merged is None:
            return self._full_snapshot(), head
        deltas: dict[str, pb.Delta] = {}
        for (type_url, name), resource in merged.items():
            delta = deltas.setdefault(type_url, pb.Delta(type_url=type_url))
            if resource is None:
                delta.removed_names.append(name)
            else:
                delta.upserts.append(resource)
        batch = pb.DeltaBatch(
            from_version=version,
            version=head,
            nonce=self.next_nonce(),
            deltas=deltas.values(),
            schema_version=CONFIG_SCHEMA_VERSION,
        )
        return [pb.StreamResponse(deltas=batch)], head

    def _merged_changes_since(self, version: int) -> Changes | None:
        if version > self.version or not self._history:
            return None
        entries = list(self._history)
        start = next((i for i, e in enumerate(entries) if e.from_version == version), None)
        if start is None:
            return None
        merged: Changes = {}
        for entry in entries[start:]:
            merged.update(entry.changes)
        return merged

    def _full_snapshot(self) -> list[pb.StreamResponse]:
        nonce = self.next_nonce()
        version = self.version
        chunks: list[pb.SnapshotChunk] = []
        current: list[pb.Resource] = []
        size = 0
        for collection in self._resources.values():
            for resource in collection.values():
                current.append(resource)
                size += resource.ByteSize() + 8
                if size >= self._chunk_bytes:
                    chunks.append(
                        pb.SnapshotChunk(version=version, nonce=nonce, index=len(chunks), resources=current)
                    )
                    current, size = [], 0
        if current:
            chunks.append(
                pb.SnapshotChunk(version=version, nonce=nonce, index=len(chunks), resources=current)
            )
        return [
            pb.StreamResponse(
                snapshot_begin=pb.SnapshotBegin(
                    version=version,
                    nonce=nonce,
                    chunk_count=len(chunks),
                    schema_version=CONFIG_SCHEMA_VERSION,
                )
            ),
            *(pb.StreamResponse(snapshot_chunk=c) for c in chunks),
            pb.StreamResponse(snapshot_end=pb.SnapshotEnd(version=version, nonce=nonce)),
        ]
