"""The master key that wraps every conversation's data key, and where it comes from.

Material, in order of precedence: `THREADLINE_MASTER_KEY`, else the key file
`THREADLINE_MASTER_KEY_FILE`, else — for an SQLite file database — the file
`<database>.key` beside it, generated on first use (mode 0600). `THREADLINE_SECRET` is not
used: token-signing secrets get rotated, and rotating a master key means re-wrapping every
data key. An in-memory store gets a random per-process key.

Two subkeys are derived with HKDF: the key-encryption key (it wraps the data keys and the
subject-index key) and a public fingerprint (`master_id`) that the database records, so
that opening it with another master key is refused instead of writing data nobody can read
together. `THREADLINE_MASTER_KEY_PREVIOUS` names the key
being rotated away from (see `threadline.ledger.rotation`).

The material is never logged or put in an error message.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from threadline.ledger import aead, canonical
from threadline.ledger.errors import StoreUnavailableError

MIN_MATERIAL = 32


class MasterKey:
    __slots__ = ("_index", "_kek", "master_id", "origin")

    def __init__(self, material: bytes, origin: str) -> None:
        if len(material) < MIN_MATERIAL:
            raise StoreUnavailableError(
                f"the master key ({origin}) must be ≥ {MIN_MATERIAL} characters"
            )
        self._kek = aead.Sealer(aead.derive(material, "threadline/data-key-wrap"))
        self._index = aead.derive(material, "threadline/subject-index")
        self.master_id = aead.derive(material, "threadline/master-id")[:8].hex()
        self.origin = origin  # where it came from, for messages (never the material)

    def __repr__(self) -> str:
        return f"MasterKey(master_id={self.master_id!r}, origin={self.origin!r})"

    @staticmethod
    def _aad(key_id: str, conversation_id: str) -> bytes:
        return canonical.dumps(["data-key", key_id, conversation_id])

    def wrap(self, data_key: bytes, key_id: str, conversation_id: str) -> bytes:
        return self._kek.seal(data_key, self._aad(key_id, conversation_id))

    def unwrap(self, wrapped: bytes, key_id: str, conversation_id: str) -> bytes:
        return self._kek.open(wrapped, self._aad(key_id, conversation_id))

    def legacy_index_key(self) -> bytes:
        """The subject-index key of databases made before the index key was stored wrapped
        (it was derived from the master key; it is stored wrapped on first open)."""
        return self._index

    def wrap_index(self, index_key: bytes) -> bytes:
        return self._kek.seal(index_key, b"subject-index-key")

    def unwrap_index(self, wrapped: bytes) -> bytes:
        return self._kek.open(wrapped, b"subject-index-key")


def ephemeral() -> MasterKey:
    return MasterKey(secrets.token_bytes(32), "a random per-process key")


def read_key_file(path: Path) -> MasterKey:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise StoreUnavailableError(
            f"cannot read the master key file {path}: {exc.strerror}"
        ) from None
    except UnicodeDecodeError:
        raise StoreUnavailableError(f"the master key file {path} is not text") from None
    return MasterKey(text.encode("utf-8"), f"key file {path}")


def create_key_file(path: Path) -> MasterKey:
    """Writes a new random key to `path` unless it exists (then reads it): the file appears
    whole or not at all, and of two processes racing to create it, both use the winner's."""
    if not path.parent.is_dir():
        raise StoreUnavailableError(f"cannot create the master key file {path}: no such directory")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, (secrets.token_urlsafe(32) + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # never replaces an existing key
        _fsync_dir(path.parent)
    except OSError as exc:
        raise StoreUnavailableError(
            f"cannot create the master key file {path}: {exc.strerror}"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return read_key_file(path)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
