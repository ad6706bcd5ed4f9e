"""Adapter API keys: `tlk_<key id>_<secret>`, shown once, stored as a SHA-256 hash.

The secret part is 256 random bits, so a fast hash is enough (a slow KDF protects guessable
passwords, not random keys); lookups go by the public key id, and the hash is compared in
constant time. Each key belongs to one tenant and carries scopes: what it may do beyond an
adapter's ordinary routes (today only `data-subjects`, the export/erase routes a privacy
officer uses, not every adapter). Scopes are stored space-separated.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from threadline.access.errors import (
    InvalidInputError,
    ServiceUnavailableError,
    UnauthenticatedError,
)
from threadline.ledger.backends import Backend, Kind

_KEY_RE = re.compile(r"^tlk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")

DATA_SUBJECTS = "data-subjects"  # POST /v1/data-subjects/export|erase
SCOPES = frozenset({DATA_SUBJECTS})


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    key_id: str
    name: str
    tenant: str
    secret_hash: str
    created_at: datetime
    revoked: bool = False
    scopes: frozenset[str] = frozenset()


def parse_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """Known scope names only: a typo must not create a key that silently lacks a right."""
    chosen = frozenset(scopes)
    unknown = sorted(chosen - SCOPES)
    if unknown:
        raise InvalidInputError(
            f"unknown scope {unknown[0]!r}; known scopes: {', '.join(sorted(SCOPES))}"
        )
    return chosen


def dump_scopes(scopes: frozenset[str]) -> str:
    return " ".join(sorted(scopes))


def load_scopes(stored: str | None) -> frozenset[str]:
    return frozenset((stored or "").split())


class KeyStore(Protocol):
    """Where key records live (the deployment's database)."""

    def add(self, record: ApiKeyRecord) -> None: ...

    def get(self, key_id: str) -> ApiKeyRecord | None: ...

    def list(self) -> list[ApiKeyRecord]: ...

    def revoke(self, key_id: str) -> bool: ...

    def close(self) -> None: ...


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def new_key(name: str, tenant: str, scopes: Iterable[str] = ()) -> tuple[str, ApiKeyRecord]:
    """Returns (the key to show once, the record to store)."""
    if not NAME_RE.match(name):
        raise InvalidInputError("key name: 1-64 letters, digits, space, '.', '_' or '-'")
    if not NAME_RE.match(tenant):
        raise InvalidInputError("tenant: 1-64 letters, digits, space, '.', '_' or '-'")
    granted = parse_scopes(scopes)
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    record = ApiKeyRecord(
        key_id=key_id,
        name=name,
        tenant=tenant,
        secret_hash=hash_secret(secret),
        created_at=datetime.now(UTC),
        scopes=granted,
    )
    return f"tlk_{key_id}_{secret}", record


def looks_like_key(token: str) -> bool:
    return token.startswith("tlk_")


class KeyVerifier:
    """Verifies presented keys against the store, caching good records briefly so a request
    does not cost a database round trip; a revocation takes effect within `cache_s`.
    1 s: a revocation made on any replica holds on every replica within a second, for one
    key lookup per key per second per replica (adapters send many requests per key)."""

    def __init__(
        self, store: KeyStore, cache_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._cache_s = cache_s
        self._clock = clock
        self._cache: dict[str, tuple[float, ApiKeyRecord]] = {}
        self._lock = threading.Lock()

    def verify(self, token: str) -> ApiKeyRecord:
        match = _KEY_RE.match(token)
        if match is None:
            raise UnauthenticatedError("malformed API key")
        key_id, secret = match.groups()
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key_id)
        if cached is not None and cached[0] > now:
            record = cached[1]
        else:
            try:
                found = self._store.get(key_id)
            except Exception as exc:  # the database is down: 503, not a 500 per request
                raise ServiceUnavailableError("the API key store is unavailable") from exc
            if found is None or found.revoked:
                raise UnauthenticatedError("unknown or revoked API key")
            record = found
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[key_id] = (now + self._cache_s, record)
        if not hmac.compare_digest(record.secret_hash, hash_secret(secret)):
            raise UnauthenticatedError("unknown or revoked API key")
        return record


class MemoryKeyStore:
    def __init__(self) -> None:
        self._records: dict[str, ApiKeyRecord] = {}
        self._lock = threading.Lock()

    def add(self, record: ApiKeyRecord) -> None:
        with self._lock:
            self._records[record.key_id] = record

    def get(self, key_id: str) -> ApiKeyRecord | None:
        with self._lock:
            return self._records.get(key_id)

    def list(self) -> list[ApiKeyRecord]:
        with self._lock:
            return sorted(self._records.values(), key=lambda r: r.created_at)

    def revoke(self, key_id: str) -> bool:
        with self._lock:
            record = self._records.get(key_id)
            if record is None:
                return False
            self._records[key_id] = replace(record, revoked=True)
            return True

    def close(self) -> None:
        pass


def open_key_store(database_url: str) -> KeyStore:
    """The key table lives in the same database as the ledger."""
    backend = Backend.parse(database_url)
    if backend.in_memory:
        return MemoryKeyStore()
    if backend.kind is Kind.SQLITE:
        from threadline.access.keys_sqlite import SQLiteKeyStore

        assert backend.path is not None
        return SQLiteKeyStore(backend.path)
    from threadline.access.keys_postgres import PostgresKeyStore

    return PostgresKeyStore(backend.dsn)
