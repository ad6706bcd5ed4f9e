"""The key table: conversation data keys (wrapped by the master key) and the blinded subject
index, stored in the ledger's own database. This module has the port and the in-memory
table; SQLite and PostgreSQL are in `keyring_sqlite` and `keyring_postgres`.

A conversation has at most one *active* key (a unique index enforces it, so two processes
creating the first key of a conversation at once agree on one). Destroying a key wipes its
wrapped bytes and keeps a tombstone (key id, conversation, time), so a record that names a
destroyed key reads as erased, while a record that names an unknown key is an error. When a
key is destroyed, the idempotency digests of the conversation's event ids are overwritten
too: they are hashes of the plaintext payloads, and a phone number's hash can be guessed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from threadline.ledger.backends import Kind
from threadline.ledger.errors import StoreUnavailableError

KEYRING_TABLE = "threadline_keyring"
DATA_KEYS_TABLE = "threadline_data_keys"
SUBJECTS_TABLE = "threadline_subject_index"
ERASED_DIGEST = "erased"


@dataclass(frozen=True, slots=True)
class DataKeyRecord:
    key_id: str
    conversation_id: str
    master_id: str
    wrapped: bytes | None  # None once destroyed
    created_at: datetime
    destroyed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class KeyringState:
    """The database's master key fingerprint and its subject-index key, wrapped by that
    master key (None in databases made before the index key was stored)."""

    master_id: str
    index_key: bytes | None


class KeyTable(Protocol):
    def create(self) -> None:
        """Creates the tables if missing (safe when several processes start at once)."""

    def keyring_state(self) -> KeyringState | None: ...

    def claim_master(self, master_id: str, index_key: bytes) -> KeyringState:
        """Records the master key and wrapped index key unless a master key is recorded;
        returns what is recorded."""

    def store_index(self, master_id: str, index_key: bytes) -> None:
        """Stores the wrapped index key where it is missing (an upgrade)."""

    def set_master(self, old_id: str, new_id: str, index_key: bytes) -> bool:
        """Ends a rotation: the database's master key becomes `new_id`, if it was `old_id`."""

    def active_keys_after(self, after: str, limit: int) -> list[DataKeyRecord]:
        """Active keys with key id > `after`, in key id order (rotation pages through)."""

    def rewrap(self, updates: Sequence[tuple[str, str, str, bytes]]) -> int:
        """(key id, old master id, new master id, new wrapped key): updates each key that is
        still active and still wrapped by the old master; returns how many were updated."""

    def active_key(self, conversation_id: str) -> DataKeyRecord | None: ...

    def ensure_key(self, candidate: DataKeyRecord, links: Sequence[str] = ()) -> DataKeyRecord:
        """The active key of the candidate's conversation, inserting the candidate if there
        is none, and the subject-index rows `links` (one transaction)."""

    def get_key(self, key_id: str) -> DataKeyRecord | None: ...

    def link(self, conversation_id: str, blinds: Sequence[str]) -> None:
        """Adds subject-index rows (idempotent)."""

    def conversations(self, blinds: Sequence[str]) -> list[str]:
        """The conversations linked to any of `blinds`, sorted."""

    def destroy(self, key_id: str, at: datetime) -> bool:
        """Wipes the key and the conversation's event-id digests; False if it was not active."""

    def erasure_mark(self) -> str:
        """Changes whenever a key is destroyed (by any process): the latest destruction time,
        read through an index. Processes compare it to drop cached keys within a second."""


class MemoryKeyTable:
    """For `memory://` stores. `forget_digests(conversation_id)` is given by the recorder."""

    def __init__(self, forget_digests: Callable[[str], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._state: KeyringState | None = None
        self._keys: dict[str, DataKeyRecord] = {}
        self._active: dict[str, str] = {}
        self._index: dict[str, set[str]] = {}
        self._forget_digests = forget_digests
        self._destroyed = 0

    def create(self) -> None:
        pass

    def erasure_mark(self) -> str:
        return str(self._destroyed)

    def keyring_state(self) -> KeyringState | None:
        return self._state

    def claim_master(self, master_id: str, index_key: bytes) -> KeyringState:
        with self._lock:
            if self._state is None:
                self._state = KeyringState(master_id, index_key)
            return self._state

    def store_index(self, master_id: str, index_key: bytes) -> None:
        with self._lock:
            if self._state == KeyringState(master_id, None):
                self._state = KeyringState(master_id, index_key)

    def set_master(self, old_id: str, new_id: str, index_key: bytes) -> bool:
        with self._lock:
            if self._state is None or self._state.master_id != old_id:
                return False
            self._state = KeyringState(new_id, index_key)
            return True

    def active_keys_after(self, after: str, limit: int) -> list[DataKeyRecord]:
        with self._lock:
            ids = sorted(k for k in self._active.values() if k > after)[:limit]
            return [self._keys[k] for k in ids]

    def rewrap(self, updates: Sequence[tuple[str, str, str, bytes]]) -> int:
        done = 0
        with self._lock:
            for key_id, old_id, new_id, wrapped in updates:
                record = self._keys.get(key_id)
                if record is not None and record.wrapped is not None and record.master_id == old_id:
                    self._keys[key_id] = replace(record, master_id=new_id, wrapped=wrapped)
                    done += 1
        return done

    def active_key(self, conversation_id: str) -> DataKeyRecord | None:
        with self._lock:
            key_id = self._active.get(conversation_id)
            return None if key_id is None else self._keys[key_id]

    def ensure_key(self, candidate: DataKeyRecord, links: Sequence[str] = ()) -> DataKeyRecord:
        self.link(candidate.conversation_id, links)
        with self._lock:
            key_id = self._active.get(candidate.conversation_id)
            if key_id is not None:
                return self._keys[key_id]
            self._keys[candidate.key_id] = candidate
            self._active[candidate.conversation_id] = candidate.key_id
            return candidate

    def get_key(self, key_id: str) -> DataKeyRecord | None:
        with self._lock:
            return self._keys.get(key_id)

    def link(self, conversation_id: str, blinds: Sequence[str]) -> None:
        with self._lock:
            for b in blinds:
                self._index.setdefault(b, set()).add(conversation_id)

    def conversations(self, blinds: Sequence[str]) -> list[str]:
        with self._lock:
            return sorted({c for b in blinds for c in self._index.get(b, ())})

    def destroy(self, key_id: str, at: datetime) -> bool:
        with self._lock:
            record = self._keys.get(key_id)
            if record is None or record.wrapped is None:
                return False
            self._keys[key_id] = replace(record, wrapped=None, destroyed_at=at)
            self._destroyed += 1
            if self._active.get(record.conversation_id) == key_id:
                del self._active[record.conversation_id]
        if self._forget_digests is not None:
            self._forget_digests(record.conversation_id)
        return True


def _forget_popo_digests(recorder: Any) -> Callable[[str], None]:
    def forget(conversation_id: str) -> None:
        with recorder._database_lock:
            ids = recorder._event_ids
            for event_id, rec in list(ids.items()):
                if rec.conversation_id == conversation_id:
                    ids[event_id] = replace(rec, digest=ERASED_DIGEST)

    return forget


def open_key_table(recorder: object, kind: Kind) -> KeyTable:
    """The key table in the same database as `recorder`, which `open_recorder` opened for a
    URL of this `kind` (the dispatch is the URL's, as for every other store)."""
    from threadline.ledger.recorders import POPOLedgerRecorder, SQLiteLedgerRecorder

    table: KeyTable
    if kind is Kind.MEMORY and isinstance(recorder, POPOLedgerRecorder):
        table = MemoryKeyTable(_forget_popo_digests(recorder))
    elif kind is Kind.SQLITE and isinstance(recorder, SQLiteLedgerRecorder):
        from threadline.ledger.keyring_sqlite import SQLiteKeyTable

        table = SQLiteKeyTable(
            recorder.datastore, recorder.events_table_name, recorder.ids_table_name
        )
    elif kind is Kind.POSTGRES:
        # psycopg is loaded already: the recorder runs on it.
        from threadline.ledger.keyring_postgres import PostgresKeyTable
        from threadline.ledger.postgres import PostgresLedgerRecorder

        if not isinstance(recorder, PostgresLedgerRecorder):
            raise StoreUnavailableError(f"no key table for a {type(recorder).__name__}")
        table = PostgresKeyTable(recorder.datastore)
    else:
        raise StoreUnavailableError(f"no key table for a {type(recorder).__name__}")
    table.create()
    return table
