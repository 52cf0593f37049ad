"""Stage 2 (authenticate): who is calling. The key from the headers, its sha256, the lookup in the
snapshot, and the key's owners resolved once for every later stage."""

from __future__ import annotations

import time
from collections.abc import Mapping

import orjson

from hydite.config.v1 import config_pb2 as pb
from hydite_common.errors import AuthenticationError, PermissionDeniedError, ServiceUnavailableError
from hydite_common.keys import (
    MASTER_KEY_ALIAS,
    MASTER_KEY_SETTING,
    MASTER_KEY_USER,
    hash_key,
    is_master_key,
    key_from_headers,
    mask_key,
)
from hydite_dataplane.authz import authorize_route
from hydite_dataplane.config.holder import SnapshotHolder
from hydite_dataplane.config.snapshot import Snapshot
from hydite_dataplane.request import Caller


def authenticate(headers: Mapping[str, str], snapshot: Snapshot) -> Caller:
    """The caller, or an OpenAI-shaped 401 (no, unknown, blocked or expired key) or 403 (blocked owner)."""
    key = key_from_headers(headers)
    if key is None:
        raise AuthenticationError(
            "no API key provided; send 'Authorization: Bearer <key>'", code="missing_api_key"
        )
    key_hash = hash_key(key)
    virtual_key = snapshot.key(key_hash)
    if virtual_key is None:
        master_hash = _master_key_hash(snapshot, key)
        if master_hash is None:
            raise AuthenticationError("Invalid API key provided")
        return Caller.of(snapshot, master_hash, _master_virtual_key(key))
    if virtual_key.blocked:
        raise AuthenticationError("this API key is blocked", code="key_blocked")
    if virtual_key.expires_unix_ms and virtual_key.expires_unix_ms <= time.time() * 1000:
        raise AuthenticationError("this API key has expired", code="key_expired")
    caller = Caller.of(snapshot, key_hash, virtual_key)
    for kind, _, owner in caller.owners():
        # A blocked user, team or organization blocks every key it owns.
        if owner is not None and owner.blocked:
            raise PermissionDeniedError(f"this key's {kind} is blocked", code=f"{kind}_blocked")
    return caller


def _master_key_hash(snapshot: Snapshot, key: str) -> str | None:
    """The master key's salted hash when key is the master key (never looked up by its sha256)."""
    setting = snapshot.settings.get(MASTER_KEY_SETTING)
    if setting is None:
        return None
    digest = orjson.loads(setting)
    return str(digest["sha256"]) if is_master_key(key, digest) else None


def _master_virtual_key(key: str) -> pb.VirtualKey:
    """The master key as a key: every model and route, no limits, billed to the proxy admin."""
    return pb.VirtualKey(key_alias=MASTER_KEY_ALIAS, key_name=mask_key(key), user_id=MASTER_KEY_USER)


def authenticated(holder: SnapshotHolder, headers: Mapping[str, str], path: str) -> Caller:
    """The one prelude of every keyed route: configured, authenticated, and allowed this path."""
    if not holder.ready:
        raise ServiceUnavailableError("the gateway has not received its configuration yet")
    caller = authenticate(headers, holder.current)
    authorize_route(caller.key, path)
    return caller
