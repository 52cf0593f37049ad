"""Provider credential encryption (AES-256-GCM, key derived from HYDITE_SALT_KEY)."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE_BYTES = 12
_TAG_BYTES = 16
_VERSION = b"\x01"


class CredentialDecryptError(ValueError):
    """The ciphertext was not made with this salt key or is corrupt."""


class CredentialCipher:
    """Encrypts and decrypts provider credentials with a key derived from the salt key."""

    def __init__(self, salt_key: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=b"hydite-credentials-v1",
            info=b"provider-credentials",
        ).derive(salt_key.encode())
        self._aead = AESGCM(derived)

    def encrypt(self, plaintext: str) -> bytes:
        """Version byte, random nonce and ciphertext; empty input stays empty."""
        if not plaintext:
            return b""
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), None)

    def decrypt(self, blob: bytes) -> str:
        """The plaintext of a blob made by encrypt(); raises CredentialDecryptError."""
        if not blob:
            return ""
        if blob[:1] != _VERSION or len(blob) < 1 + _NONCE_BYTES + _TAG_BYTES:
            raise CredentialDecryptError("unknown or truncated credential format")
        nonce = blob[1 : 1 + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, blob[1 + _NONCE_BYTES :], None).decode()
        except InvalidTag as exc:
            raise CredentialDecryptError("credential does not decrypt with this salt key") from exc


def mask_secret(secret: str) -> str:
    """Show only enough of a credential to recognise it."""
    if not secret:
        return ""
    return secret[:3] + "*" * 8 + secret[-4:] if len(secret) > 10 else "*" * 8
