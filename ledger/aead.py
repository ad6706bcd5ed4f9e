"""AES-256-GCM and HKDF from the `cryptography` package (the only module that imports it).

Blobs are `nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`, with a random nonce per
encryption: a data key encrypts the personal fields of one conversation, far below the
2^32 messages per key where random 96-bit nonces start to need care.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from threadline.ledger.errors import LedgerError

KEY_BYTES = 32
NONCE_BYTES = 12


class DecryptionFailedError(LedgerError, ValueError):
    """Wrong key, or the blob or its associated data was altered."""


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def derive(material: bytes, purpose: str) -> bytes:
    """A 256-bit subkey of `material` for one purpose (HKDF-SHA256)."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=b"threadline/v1",
        info=purpose.encode("ascii"),
    ).derive(material)


def blind(key: bytes, value: str) -> str:
    """HMAC-SHA256 of `value`: equal values give equal blinds, and without `key` a blind
    cannot be tested against guesses."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


class Sealer:
    """Encrypts and decrypts with one key; the key never leaves this object."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"an AES-256 key has {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:  # never show key material
        return "Sealer(<key>)"

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        if len(blob) < NONCE_BYTES + 16:
            raise DecryptionFailedError("ciphertext is too short")
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag:
            raise DecryptionFailedError("ciphertext does not authenticate") from None
