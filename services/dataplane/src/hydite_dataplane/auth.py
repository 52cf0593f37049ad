"""Stage 1: who is calling. Key from the headers, sha256, lookup in the snapshot."""

from __future__ import annotations

import time
from collections.abc import Mapping

from hydite.config.v1 import config_pb2 as pb
from hydite_common.errors import AuthenticationError, PermissionDeniedError
from hydite_common.keys import hash_key, key_from_headers
from hydite_dataplane.snapshot import Snapshot


def authenticate(headers: Mapping[str, str], snapshot: Snapshot) -> tuple[str, pb.VirtualKey]:
    """The key's hash and settings, or an OpenAI-shaped 401."""
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
    _check_owners(virtual_key, snapshot)
    return key_hash, virtual_key


def _check_owners(key: pb.VirtualKey, snapshot: Snapshot) -> None:
    """A blocked user, team or organization blocks every key it owns."""
    owners = (
        ("user", snapshot.users.get(key.user_id) if key.user_id else None),
        ("team", snapshot.teams.get(key.team_id) if key.team_id else None),
        ("organization", snapshot.organizations.get(key.organization_id) if key.organization_id else None),
    )
    for kind, owner in owners:
        if owner is not None and owner.blocked:
            raise PermissionDeniedError(f"this key's {kind} is blocked", code=f"{kind}_blocked")
