"""Ids of provider-stored resources (responses) as the gateway hands them out: they name the
deployment that holds the resource and its owner, and are signed, so the data plane stays
stateless and one tenant can never reach another's resource."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import orjson

from hydite.config.v1 import config_pb2 as pb

_MARK = "hyd"
_SIGNATURE_BYTES = 16


def owner_of(key: pb.VirtualKey, key_hash: str) -> str:
    """Who owns what a key creates: its team, else its user, else the key itself."""
    if key.team_id:
        return "team:" + key.team_id
    if key.user_id:
        return "user:" + key.user_id
    return "key:" + key_hash


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """What a gateway id stands for."""

    deployment_id: str
    upstream_id: str


class ResourceIdCodec:
    """Encodes and verifies gateway resource ids with a secret derived from HYDITE_SALT_KEY."""

    def __init__(self, salt_key: str) -> None:
        self._secret = hashlib.sha256(b"hydite-resource-ids\x00" + salt_key.encode()).digest()

    def _sign(self, payload: str) -> str:
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).digest()[:_SIGNATURE_BYTES].hex()

    def encode(self, upstream_id: str, deployment_id: str, owner: str, kind: str = "resp") -> str:
        """A provider's id as <kind>_hyd_<payload>_<signature>."""
        # Hex keeps '_' free as the separator.
        payload = orjson.dumps([deployment_id, upstream_id, owner]).hex()
        return f"{kind}_{_MARK}_{payload}_{self._sign(payload)}"

    def decode(self, gateway_id: str, owner: str) -> ResourceRef | None:
        """The resource behind an id, or None when the id is forged, foreign or not the gateway's."""
        parts = gateway_id.rsplit("_", 2)
        if len(parts) != 3 or not parts[0].endswith(_MARK):
            return None
        _, payload, signature = parts
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            deployment_id, upstream_id, stored_owner = orjson.loads(bytes.fromhex(payload))
        except (ValueError, orjson.JSONDecodeError):
            return None
        if not hmac.compare_digest(str(stored_owner), owner):
            return None
        return ResourceRef(str(deployment_id), str(upstream_id))
