"""The key table in the ledger's SQLite database (same file, same connection pool).

Destroying a key runs with `secure_delete` on, so SQLite zeroes the freed bytes of the
wrapped key, and then truncates the write-ahead log, which would otherwise keep page images
holding it until the next checkpoint reuses them (best effort: a busy reader may delay it).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import PersistenceError
from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore

from threadline.ledger.errors import StoreUnavailableError
from threadline.ledger.keyring import (
    DATA_KEYS_TABLE,
    ERASED_DIGEST,
    KEYRING_TABLE,
    SUBJECTS_TABLE,
    DataKeyRecord,
    KeyringState,
)

# Table names are module constants, never input (hence the S608 waivers below).
_CREATE = [
    f"CREATE TABLE IF NOT EXISTS {KEYRING_TABLE} ("
    "id INTEGER PRIMARY KEY CHECK (id = 1), master_id TEXT NOT NULL, created_at TEXT NOT NULL, "
    "index_key BLOB)",
    f"CREATE TABLE IF NOT EXISTS {DATA_KEYS_TABLE} ("
    "key_id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, master_id TEXT NOT NULL, "
    "wrapped BLOB, created_at TEXT NOT NULL, destroyed_at TEXT) WITHOUT ROWID",
    f"CREATE UNIQUE INDEX IF NOT EXISTS {DATA_KEYS_TABLE}_active "
    f"ON {DATA_KEYS_TABLE} (conversation_id) WHERE wrapped IS NOT NULL",
    # erasure_mark(): max(destroyed_at) through this index, a lookup whatever the table size
    f"CREATE INDEX IF NOT EXISTS {DATA_KEYS_TABLE}_destroyed "
    f"ON {DATA_KEYS_TABLE} (destroyed_at) WHERE destroyed_at IS NOT NULL",
    f"CREATE TABLE IF NOT EXISTS {SUBJECTS_TABLE} ("
    "blind TEXT NOT NULL, conversation_id TEXT NOT NULL, "
    "PRIMARY KEY (blind, conversation_id)) WITHOUT ROWID",
]
_COLUMNS = "key_id, conversation_id, master_id, wrapped, created_at, destroyed_at"


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _state(row: Sequence[Any]) -> KeyringState:
    return KeyringState(row[0], None if row[1] is None else bytes(row[1]))


def _record(row: Sequence[Any]) -> DataKeyRecord:
    return DataKeyRecord(
        key_id=row[0],
        conversation_id=row[1],
        master_id=row[2],
        wrapped=None if row[3] is None else bytes(row[3]),
        created_at=datetime.fromisoformat(row[4]),
        destroyed_at=None if row[5] is None else datetime.fromisoformat(row[5]),
    )


class SQLiteKeyTable:
    def __init__(self, datastore: SQLiteDatastore, events_table: str, event_ids_table: str) -> None:
        self.datastore = datastore
        self.events_table = events_table
        self.event_ids_table = event_ids_table
        self._wal = False

    def _run(self, statement: str, params: Sequence[Any] = (), *, write: bool = False) -> Any:
        try:
            with self.datastore.transaction(commit=write) as c:
                c.execute(statement, params)
                return c.fetchall()
        except PersistenceError as exc:
            raise StoreUnavailableError(f"key table: {exc}") from exc

    def create(self) -> None:
        try:
            with self.datastore.transaction(commit=True) as c:
                for statement in _CREATE:
                    c.execute(statement)
                c.execute(f"PRAGMA table_info({KEYRING_TABLE})")
                if "index_key" not in {row[1] for row in c.fetchall()}:  # made before it
                    c.execute(f"ALTER TABLE {KEYRING_TABLE} ADD COLUMN index_key BLOB")
                c.execute("PRAGMA journal_mode")
                self._wal = str(c.fetchone()[0]).lower() == "wal"
        except PersistenceError as exc:
            raise StoreUnavailableError(f"cannot create the key table: {exc}") from exc

    @contextmanager
    def _lazy_commit(self) -> Iterator[SQLiteCursor]:
        """A write transaction committed without its own fsync. Safe for rows that only
        events written *later* depend on (a new data key, subject links): in WAL mode every
        commit appends to the one log, so the later event's synced commit makes these
        durable too; if no event follows, losing them in a crash loses nothing. This keeps
        a new conversation at one fsync."""
        with self.datastore.get_connection(commit=True) as conn:
            if not self._wal:
                with conn.transaction(commit=True) as c:
                    yield c
                return
            cursor = conn.cursor()
            cursor.execute("PRAGMA synchronous")
            level = int(cursor.fetchone()[0])
            cursor.execute("PRAGMA synchronous = NORMAL")
            try:
                with conn.transaction(commit=True) as c:
                    yield c
            finally:
                conn.cursor().execute(f"PRAGMA synchronous = {level}")

    def keyring_state(self) -> KeyringState | None:
        rows = self._run(
            f"SELECT master_id, index_key FROM {KEYRING_TABLE} WHERE id = 1"  # noqa: S608
        )
        return _state(rows[0]) if rows else None

    def claim_master(self, master_id: str, index_key: bytes) -> KeyringState:
        try:
            with self.datastore.transaction(commit=True) as c:
                c.execute(
                    f"INSERT OR IGNORE INTO {KEYRING_TABLE} "  # noqa: S608
                    "(id, master_id, created_at, index_key) VALUES (1, ?, ?, ?)",
                    (master_id, _ts(datetime.now(UTC)), index_key),
                )
                c.execute(
                    f"SELECT master_id, index_key FROM {KEYRING_TABLE} WHERE id = 1"  # noqa: S608
                )
                return _state(c.fetchone())
        except PersistenceError as exc:
            raise StoreUnavailableError(f"key table: {exc}") from exc

    def store_index(self, master_id: str, index_key: bytes) -> None:
        self._run(
            f"UPDATE {KEYRING_TABLE} SET index_key = ? "  # noqa: S608
            "WHERE id = 1 AND master_id = ? AND index_key IS NULL",
            (index_key, master_id),
            write=True,
        )

    def set_master(self, old_id: str, new_id: str, index_key: bytes) -> bool:
        try:
            with self.datastore.transaction(commit=True) as c:
                c.execute(
                    f"UPDATE {KEYRING_TABLE} SET master_id = ?, index_key = ? "  # noqa: S608
                    "WHERE id = 1 AND master_id = ?",
                    (new_id, index_key, old_id),
                )
                return bool(c.sqlite_cursor.rowcount)
        except PersistenceError as exc:
            raise StoreUnavailableError(f"key table: {exc}") from exc

    def active_keys_after(self, after: str, limit: int) -> list[DataKeyRecord]:
        rows = self._run(
            f"SELECT {_COLUMNS} FROM {DATA_KEYS_TABLE} "  # noqa: S608
            "WHERE key_id > ? AND wrapped IS NOT NULL ORDER BY key_id LIMIT ?",
            (after, limit),
        )
        return [_record(r) for r in rows]

    def rewrap(self, updates: Sequence[tuple[str, str, str, bytes]]) -> int:
        done = 0
        try:
            with self.datastore.transaction(commit=True) as c:
                for key_id, old_id, new_id, wrapped in updates:
                    c.execute(
                        f"UPDATE {DATA_KEYS_TABLE} SET master_id = ?, wrapped = ? "  # noqa: S608
                        "WHERE key_id = ? AND master_id = ? AND wrapped IS NOT NULL",
                        (new_id, wrapped, key_id, old_id),
                    )
                    done += c.sqlite_cursor.rowcount
        except PersistenceError as exc:
            raise StoreUnavailableError(f"key table: {exc}") from exc
        return done

    def active_key(self, conversation_id: str) -> DataKeyRecord | None:
        rows = self._run(
            f"SELECT {_COLUMNS} FROM {DATA_KEYS_TABLE} "  # noqa: S608
            "WHERE conversation_id = ? AND wrapped IS NOT NULL",
            (conversation_id,),
        )
        return _record(rows[0]) if rows else None

    def ensure_key(self, candidate: DataKeyRecord, links: Sequence[str] = ()) -> DataKeyRecord:
        try:
            with self._lazy_commit() as c:
                if links:
                    c.executemany(
                        f"INSERT OR IGNORE INTO {SUBJECTS_TABLE} VALUES (?, ?)",  # noqa: S608
                        [(b, candidate.conversation_id) for b in links],
                    )
                c.execute(
                    f"INSERT OR IGNORE INTO {DATA_KEYS_TABLE} ({_COLUMNS}) "  # noqa: S608
                    "VALUES (?, ?, ?, ?, ?, NULL)",
                    (
                        candidate.key_id,
                        candidate.conversation_id,
                        candidate.master_id,
                        candidate.wrapped,
                        _ts(candidate.created_at),
                    ),
                )
                c.execute(
                    f"SELECT {_COLUMNS} FROM {DATA_KEYS_TABLE} "  # noqa: S608
                    "WHERE conversation_id = ? AND wrapped IS NOT NULL",
                    (candidate.conversation_id,),
                )
                return _record(c.fetchone())
        except (PersistenceError, sqlite3.Error) as exc:
            raise StoreUnavailableError(f"key table: {exc}") from exc

    def get_key(self, key_id: str) -> DataKeyRecord | None:
        rows = self._run(
            f"SELECT {_COLUMNS} FROM {DATA_KEYS_TABLE} WHERE key_id = ?",  # noqa: S608
            (key_id,),
        )
        return _record(rows[0]) if rows else None

    def link(self, conversation_id: str, blinds: Sequence[str]) -> None:
        try:
            with self._lazy_commit() as c:
                c.executemany(
                    f"INSERT OR IGNORE INTO {SUBJECTS_TABLE} VALUES (?, ?)",  # noqa: S608
                    [(b, conversation_id) for b in blinds],
                )
        except (PersistenceError, sqlite3.Error) as exc:
            raise StoreUnavailableError(f"key table: {exc}") from exc

    def conversations(self, blinds: Sequence[str]) -> list[str]:
        if not blinds:
            return []
        marks = ",".join("?" * len(blinds))
        rows = self._run(
            f"SELECT DISTINCT conversation_id FROM {SUBJECTS_TABLE} "  # noqa: S608
            f"WHERE blind IN ({marks}) ORDER BY conversation_id",
            list(blinds),
        )
        return [r[0] for r in rows]

    def erasure_mark(self) -> str:
        rows = self._run(
            f"SELECT max(destroyed_at) FROM {DATA_KEYS_TABLE} "  # noqa: S608
            "WHERE destroyed_at IS NOT NULL"
        )
        return str(rows[0][0]) if rows else "None"

    def destroy(self, key_id: str, at: datetime) -> bool:
        try:
            with self.datastore.get_connection(commit=True) as conn:
                conn.cursor().execute("PRAGMA secure_delete = ON")
                with conn.transaction(commit=True) as c:
                    c.execute(
                        f"SELECT conversation_id FROM {DATA_KEYS_TABLE} "  # noqa: S608
                        "WHERE key_id = ? AND wrapped IS NOT NULL",
                        (key_id,),
                    )
                    row = c.fetchone()
                    if row is None:
                        return False
                    c.execute(
                        f"UPDATE {DATA_KEYS_TABLE} SET wrapped = NULL, destroyed_at = ? "  # noqa: S608
                        "WHERE key_id = ?",
                        (_ts(at), key_id),
                    )
                    # By primary key: the event-id table has no conversation index.
                    c.execute(
                        f"SELECT state FROM {self.events_table} "  # noqa: S608
                        "WHERE originator_id = ?",
                        (row[0],),
                    )
                    event_ids = [(json.loads(r[0])["event_id"],) for r in c.fetchall()]
                    c.executemany(
                        f"UPDATE {self.event_ids_table} "  # noqa: S608
                        f"SET digest = '{ERASED_DIGEST}' WHERE event_id = ?",
                        event_ids,
                    )
                # Outside the transaction: checkpoint the WAL and truncate it to zero bytes.
                conn.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return True
        except (PersistenceError, sqlite3.Error) as exc:
            raise StoreUnavailableError(f"key table: {exc}") from exc
