"""Virtual key format, generation, hashing and masking."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

VIRTUAL_KEY_PREFIX = "sk-hydite-"
MASTER_KEY_SETTING = "master_key"
"""The snapshot setting that lets data planes recognise the master key: a salt and
sha256(salt + key), never the key."""
MASTER_KEY_ALIAS = "master_key"
MASTER_KEY_USER = "default_user_id"
"""Who the master key's calls are billed to, as LiteLLM names its proxy admin."""


def hash_key(key: str) -> str:
    """The sha256 hex digest under which a key is stored and looked up."""
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    """A new random virtual key (256 bits of entropy)."""
    return VIRTUAL_KEY_PREFIX + secrets.token_urlsafe(32)


def mask_key(key: str) -> str:
    """A display form that identifies a key without revealing it: 'sk-...abcd'."""
    return f"sk-...{key[-4:]}" if len(key) > 8 else "sk-..."


def looks_like_hash(value: str) -> bool:
    """Whether value is already a sha256 hex digest rather than a key."""
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def key_or_hash_to_hash(value: str) -> str:
    """Accept either a key or its hash (admin APIs take both) and return the hash."""
    return value if looks_like_hash(value) else hash_key(value)


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The key a client sent: Authorization: Bearer, api-key or x-api-key."""
    authorization = headers.get("Authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        if not value and authorization.startswith("sk-"):
            return authorization
    return headers.get("api-key") or headers.get("x-api-key") or None


def master_key_digest(master_key: str, salt_key: str) -> dict[str, str]:
    """The master key setting's value: a salt derived from the deployment's salt key (the same on
    every control-plane replica) and the salted hash of the key."""
    salt = hmac.new(salt_key.encode(), b"hydite master key salt", hashlib.sha256).hexdigest()[:32]
    return {"salt": salt, "sha256": hashlib.sha256((salt + master_key).encode()).hexdigest()}


def is_master_key(key: str, digest: Mapping[str, str]) -> bool:
    """Whether key is the master key the digest describes (constant time)."""
    salt, expected = digest.get("salt", ""), digest.get("sha256", "")
    if not salt or not expected:
        return False
    actual = hashlib.sha256((salt + key).encode()).hexdigest()
    return hmac.compare_digest(actual, expected)
