"""The immutable config snapshot the request path reads, and the holder that swaps it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import immutables

from hydite.config.v1 import config_pb2 as pb
from hydite_common.pricing import TokenPrice


@dataclass(frozen=True, slots=True)
class DeploymentTarget:
    """A deployment ready to call: credential decrypted, prices and params decoded."""

    deployment_id: str
    model_name: str
    provider: str
    upstream_model: str
    api_base: str
    api_key: str = field(repr=False)
    api_version: str
    timeout_seconds: float
    stream_timeout_seconds: float
    weight: float
    price: TokenPrice
    extra_params: dict[str, Any]
    model_info: dict[str, Any]
    max_retries: int | None = None  # None: the gateway default


PARSED_KEYS_KEPT = 10_000


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One config version: every collection is an immutable map, read without locks."""

    version: int
    keys: immutables.Map[str, bytes]
    """Serialized VirtualKey per key hash: a parsed message costs ~4x the memory (100k keys)."""
    users: immutables.Map[str, pb.User]
    teams: immutables.Map[str, pb.Team]
    organizations: immutables.Map[str, pb.Organization]
    customers: immutables.Map[str, pb.Customer]
    key_groups: immutables.Map[str, pb.KeyGroup]
    deployments: immutables.Map[str, DeploymentTarget]
    settings: immutables.Map[str, bytes]
    model_groups: immutables.Map[str, tuple[DeploymentTarget, ...]]
    """Derived: public model name -> its deployments."""
    parsed_keys: dict[str, pb.VirtualKey] = field(default_factory=dict, init=False, repr=False, compare=False)
    """Keys parsed while this version serves; bounded, and gone with the version."""

    def key(self, key_hash: str) -> pb.VirtualKey | None:
        """The virtual key with this hash, or None. Treat it as read-only: it is shared."""
        parsed = self.parsed_keys.get(key_hash)
        if parsed is not None:
            return parsed
        raw = self.keys.get(key_hash)
        if raw is None:
            return None
        parsed = pb.VirtualKey.FromString(raw)
        if len(self.parsed_keys) < PARSED_KEYS_KEPT:
            self.parsed_keys[key_hash] = parsed
        return parsed


def empty_snapshot() -> Snapshot:
    """Version 0: nothing known yet."""
    empty: immutables.Map[Any, Any] = immutables.Map()
    return Snapshot(0, empty, empty, empty, empty, empty, empty, empty, empty, empty)


class SnapshotHolder:
    """Owns the current snapshot; a request reads `current` once and uses that object."""

    def __init__(self) -> None:
        self.current: Snapshot = empty_snapshot()
        self.ready = False

    def swap(self, snapshot: Snapshot) -> None:
        """Publish a new snapshot atomically (a single reference assignment)."""
        self.current = snapshot
        self.ready = True
