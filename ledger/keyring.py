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

from ledger.errors import StoreUnavailable

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


class KeyTable(Protocol):
    def create(self) -> None:
        """Creates the tables if missing (safe when several processes start at once)."""

    def claim_master(self, master_id: str) -> str:
        """Records `master_id` as the database's master key unless one is recorded; returns
        the recorded one."""

    def recorded_master(self) -> str | None: ...

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


class MemoryKeyTable:
    """For `memory://` stores. `forget_digests(conversation_id)` is given by the recorder."""

    def __init__(self, forget_digests: Callable[[str], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._master: str | None = None
        self._keys: dict[str, DataKeyRecord] = {}
        self._active: dict[str, str] = {}
        self._index: dict[str, set[str]] = {}
        self._forget_digests = forget_digests

    def create(self) -> None:
        pass

    def claim_master(self, master_id: str) -> str:
        with self._lock:
            if self._master is None:
                self._master = master_id
            return self._master

    def recorded_master(self) -> str | None:
        return self._master

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


def open_key_table(recorder: object) -> KeyTable:
    """The key table in the same database as `recorder`."""
    from ledger.recorders import POPOLedgerRecorder, SQLiteLedgerRecorder

    table: KeyTable
    if isinstance(recorder, POPOLedgerRecorder):
        table = MemoryKeyTable(_forget_popo_digests(recorder))
    elif isinstance(recorder, SQLiteLedgerRecorder):
        from ledger.keyring_sqlite import SQLiteKeyTable

        table = SQLiteKeyTable(
            recorder.datastore, recorder.events_table_name, recorder.ids_table_name
        )
    elif type(recorder).__name__ == "PostgresLedgerRecorder":
        from ledger.keyring_postgres import PostgresKeyTable

        table = PostgresKeyTable(recorder.datastore)  # type: ignore[attr-defined]
    else:
        raise StoreUnavailable(f"no key table for a {type(recorder).__name__}")
    table.create()
    return table
