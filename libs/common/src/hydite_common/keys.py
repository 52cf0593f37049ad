"""Virtual key format, generation, hashing and masking."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping

VIRTUAL_KEY_PREFIX = "sk-hydite-"


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
