"""Stage 2 (authenticate): who is calling. The key from the headers, its sha256, the lookup in the
snapshot, and the key's owners resolved once for every later stage."""

from __future__ import annotations

import time
from collections.abc import Mapping

from hydite_common.errors import AuthenticationError, PermissionDeniedError, ServiceUnavailableError
from hydite_common.keys import hash_key, key_from_headers
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
        raise AuthenticationError("Invalid API key provided")
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


def authenticated(holder: SnapshotHolder, headers: Mapping[str, str], path: str) -> Caller:
    """The one prelude of every keyed route: configured, authenticated, and allowed this path."""
    if not holder.ready:
        raise ServiceUnavailableError("the gateway has not received its configuration yet")
    caller = authenticate(headers, holder.current)
    authorize_route(caller.key, path)
    return caller
