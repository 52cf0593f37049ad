"""The immutable config snapshot the request path reads: one map per resource type, keyed by the
type's URL, and the deployments it derives."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import immutables

from hydite.config.v1 import config_pb2 as pb
from hydite_common import config_types as types
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
    """One config version: every collection is an immutable map, read without locks.

    `collections` holds one map per resource type URL (see `config.decode.COLLECTIONS`); the
    properties below are typed views of the ones the request path reads.
    """

    version: int
    collections: Mapping[str, immutables.Map[str, Any]]
    model_groups: immutables.Map[str, tuple[DeploymentTarget, ...]]
    """Derived: public model name -> its deployments."""
    parsed_keys: dict[str, pb.VirtualKey] = field(default_factory=dict, init=False, repr=False, compare=False)
    """Keys parsed while this version serves; bounded, and gone with the version."""

    @property
    def keys(self) -> immutables.Map[str, bytes]:
        """Serialized VirtualKey per key hash: a parsed message costs ~4x the memory (100k keys)."""
        return self.collections[types.VIRTUAL_KEY]

    @property
    def users(self) -> immutables.Map[str, pb.User]:
        """Users by id."""
        return self.collections[types.USER]

    @property
    def teams(self) -> immutables.Map[str, pb.Team]:
        """Teams by id."""
        return self.collections[types.TEAM]

    @property
    def organizations(self) -> immutables.Map[str, pb.Organization]:
        """Organizations by id."""
        return self.collections[types.ORGANIZATION]

    @property
    def customers(self) -> immutables.Map[str, pb.Customer]:
        """Customers (end users) by id."""
        return self.collections[types.CUSTOMER]

    @property
    def key_groups(self) -> immutables.Map[str, pb.KeyGroup]:
        """Key groups by name."""
        return self.collections[types.KEY_GROUP]

    @property
    def deployments(self) -> immutables.Map[str, DeploymentTarget]:
        """Deployments by id, ready to call."""
        return self.collections[types.DEPLOYMENT]

    @property
    def settings(self) -> immutables.Map[str, bytes]:
        """Gateway settings by name, as JSON."""
        return self.collections[types.SETTING]

    def key(self, key_hash: str) -> pb.VirtualKey | None:
        """The virtual key with this hash, or None. Treat it as read-only: it is shared."""
        parsed = self.parsed_keys.get(key_hash)
        if parsed is not None:
            return parsed
        raw = self.collections[types.VIRTUAL_KEY].get(key_hash)
        if raw is None:
            return None
        parsed = pb.VirtualKey.FromString(raw)
        if len(self.parsed_keys) < PARSED_KEYS_KEPT:
            self.parsed_keys[key_hash] = parsed
        return parsed
