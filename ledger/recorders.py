"""eventsourcing's application recorders, extended with the event-id table that makes
appends idempotent. The ids are inserted in the same transaction as the stored events (the
recorders' `_insert_events` hook), so an event and its idempotency key commit together.

The PostgreSQL recorder lives in the leaf module `ledger.postgres` (psycopg stays optional).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from eventsourcing import persistence
from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteCursor,
    SQLiteDatastore,
)

EVENT_IDS_TABLE = "threadline_event_ids"
# Below SQLite's smallest host-parameter limit (999 before 3.32).
HEADS_PER_STATEMENT = 500


def notification_from_row(row: Sequence[Any]) -> Notification:
    """A `(sequence, conversation_id, position, topic, state)` row, as the SQL backends
    select it, as an eventsourcing Notification."""
    return Notification(
        id=row[0], originator_id=row[1], originator_version=row[2], topic=row[3], state=row[4]
    )


@dataclass(frozen=True, slots=True)
class EventIdRecord:
    """Idempotency key of a stored event. `sequence` is filled in by the recorder."""

    event_id: str
    conversation_id: str
    position: int
    digest: str
    sequence: int = 0


class LedgerRecorder(Protocol):
    """The port the store needs from a backend (eventsourcing's ApplicationRecorder plus
    conversation reads that return notification ids, and event-id lookups)."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None: ...

    def select_conversation(
        self,
        conversation_id: str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[Notification]: ...

    def lookup_event_ids(self, event_ids: Sequence[str]) -> dict[str, EventIdRecord]: ...

    def indexed_heads(self, conversation_id: str | None = None) -> dict[str, int]:
        """The highest position the idempotency table records per conversation (the audit
        compares it with the chain: a deleted newest event leaves its id behind)."""
        ...

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]: ...

    def max_notification_id(self) -> int | None: ...


@runtime_checkable
class HeadsReader(Protocol):
    """Optional capability: many conversations' newest stored records in a few statements
    (the incremental checkpoint reads thousands of untouched heads; without it, one
    indexed read per conversation)."""

    def select_heads(self, conversation_ids: Sequence[str]) -> dict[str, Notification]:
        """Each conversation's newest stored record; a conversation with none is absent."""
        ...


# sqlite3's exceptions as eventsourcing's SQLiteTransaction translates them (most specific
# first: IntegrityError etc. are DatabaseErrors).
_SQLITE_ERRORS: tuple[tuple[type[sqlite3.Error], type[persistence.PersistenceError]], ...] = (
    (sqlite3.InterfaceError, persistence.InterfaceError),
    (sqlite3.DataError, persistence.DataError),
    (sqlite3.OperationalError, persistence.OperationalError),
    (sqlite3.IntegrityError, persistence.IntegrityError),
    (sqlite3.InternalError, persistence.InternalError),
    (sqlite3.ProgrammingError, persistence.ProgrammingError),
    (sqlite3.NotSupportedError, persistence.NotSupportedError),
    (sqlite3.DatabaseError, persistence.DatabaseError),
)


def _translated(exc: sqlite3.Error) -> persistence.PersistenceError:
    for raw, ours in _SQLITE_ERRORS:
        if isinstance(exc, raw):
            return ours(exc)
    return persistence.PersistenceError(exc)


def _event_ids(kwargs: dict[str, Any]) -> Sequence[EventIdRecord]:
    ids: Sequence[EventIdRecord] = kwargs.get("event_ids") or ()
    return ids


class POPOLedgerRecorder(POPOApplicationRecorder):
    """In-memory backend (`memory://`), for tests and demos."""

    def __init__(self) -> None:
        super().__init__()
        self._event_ids: dict[str, EventIdRecord] = {}

    def _assert_uniqueness(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        super()._assert_uniqueness(stored_events, **kwargs)
        ids = [r.event_id for r in _event_ids(kwargs)]
        if len(set(ids)) < len(ids) or any(i in self._event_ids for i in ids):
            raise IntegrityError(f"event id already recorded: {ids}")

    def _update_table(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._update_table(stored_events, **kwargs)
        assert notification_ids is not None
        for record, sequence in zip(_event_ids(kwargs), notification_ids, strict=False):
            self._event_ids[record.event_id] = replace(record, sequence=sequence)
        return notification_ids

    def select_conversation(
        self,
        conversation_id: str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[Notification]:
        with self._database_lock:
            index = self._stored_events_index.get(conversation_id, {})
            positions = sorted(
                p for p in index if (gt is None or p > gt) and (lte is None or p <= lte)
            )
            if desc:
                positions.reverse()
            if limit is not None:
                positions = positions[:limit]
            out = []
            for p in positions:
                s = self._stored_events[index[p]]
                out.append(
                    Notification(
                        id=index[p] + 1,
                        originator_id=s.originator_id,
                        originator_version=s.originator_version,
                        topic=s.topic,
                        state=s.state,
                    )
                )
            return out

    def lookup_event_ids(self, event_ids: Sequence[str]) -> dict[str, EventIdRecord]:
        with self._database_lock:
            return {i: self._event_ids[i] for i in event_ids if i in self._event_ids}

    def select_heads(self, conversation_ids: Sequence[str]) -> dict[str, Notification]:
        """Each conversation's newest stored record (none stored: absent)."""
        out = {}
        for conversation_id in conversation_ids:
            rows = self.select_conversation(conversation_id, desc=True, limit=1)
            if rows:
                out[conversation_id] = rows[0]
        return out

    def indexed_heads(self, conversation_id: str | None = None) -> dict[str, int]:
        heads: dict[str, int] = {}
        with self._database_lock:
            for r in self._event_ids.values():
                if conversation_id is None or r.conversation_id == conversation_id:
                    heads[r.conversation_id] = max(heads.get(r.conversation_id, 0), r.position)
        return heads


class SQLiteLedgerRecorder(SQLiteApplicationRecorder):
    """SQLite backend: eventsourcing's `stored_events` table (rowid = global sequence) plus
    `threadline_event_ids`."""

    def __init__(
        self,
        datastore: SQLiteDatastore,
        events_table_name: str = "stored_events",
        ids_table_name: str = EVENT_IDS_TABLE,
    ) -> None:
        # Set before super().__init__, which builds the CREATE TABLE statements.
        self.ids_table_name = ids_table_name
        super().__init__(datastore, events_table_name)
        # Table names are our own constants, never user input (hence the S608 waivers).
        self._insert_ids_statement = f"INSERT INTO {ids_table_name} VALUES (?,?,?,?,?)"  # noqa: S608

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {self.ids_table_name} ("
            "event_id TEXT PRIMARY KEY, "
            "conversation_id TEXT NOT NULL, "
            "position INTEGER NOT NULL, "
            "sequence INTEGER NOT NULL, "
            "digest TEXT NOT NULL) WITHOUT ROWID"
        )
        return statements

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """eventsourcing's `insert_events` (one writer connection from the pool, BEGIN,
        inserts, COMMIT, its exceptions) on the sqlite3 connection itself: its transaction,
        cursor and context-manager wrappers cost about as much Python time per append as
        SQLite takes to insert the event and its id (benchmarks/ledger.py)."""
        connection: SQLiteConnection
        with self.datastore.get_connection(commit=True) as connection:
            raw = connection._sqlite_conn
            try:
                cursor = raw.cursor()
                try:
                    cursor.execute("BEGIN")
                    try:
                        sequences = self._insert_events(
                            SQLiteCursor(cursor), stored_events, **kwargs
                        )
                        raw.commit()
                    except BaseException:
                        raw.rollback()
                        raise
                finally:
                    cursor.close()
            except sqlite3.Error as exc:
                raise _translated(exc) from exc
        return sequences

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        sequences = super()._insert_events(c, stored_events, **kwargs)
        assert sequences is not None
        ids = _event_ids(kwargs)
        if ids:
            c.executemany(
                self._insert_ids_statement,
                [
                    (r.event_id, r.conversation_id, r.position, seq, r.digest)
                    for r, seq in zip(ids, sequences, strict=True)
                ],
            )
        return sequences

    def select_conversation(
        self,
        conversation_id: str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[Notification]:
        statement = (
            "SELECT rowid, originator_id, originator_version, topic, state "  # noqa: S608
            f"FROM {self.events_table_name} WHERE originator_id=? "
        )
        params: list[Any] = [conversation_id]
        if gt is not None:
            statement += "AND originator_version>? "
            params.append(gt)
        if lte is not None:
            statement += "AND originator_version<=? "
            params.append(lte)
        statement += "ORDER BY originator_version " + ("DESC " if desc else "ASC ")
        if limit is not None:
            statement += "LIMIT ?"
            params.append(limit)
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, params)
            return [notification_from_row(row) for row in c.fetchall()]

    def lookup_event_ids(self, event_ids: Sequence[str]) -> dict[str, EventIdRecord]:
        if not event_ids:
            return {}
        marks = ",".join("?" * len(event_ids))
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT event_id, conversation_id, position, digest, sequence "  # noqa: S608
                f"FROM {self.ids_table_name} WHERE event_id IN ({marks})",
                list(event_ids),
            )
            return {
                row[0]: EventIdRecord(row[0], row[1], row[2], row[3], row[4])
                for row in c.fetchall()
            }

    def select_heads(self, conversation_ids: Sequence[str]) -> dict[str, Notification]:
        """Each conversation's newest stored record (none stored: absent), a few hundred
        conversations per statement (the checkpoint writer reads thousands of heads)."""
        out: dict[str, Notification] = {}
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(conversation_ids), HEADS_PER_STATEMENT):
                chunk = list(conversation_ids[start : start + HEADS_PER_STATEMENT])
                marks = ",".join("?" * len(chunk))
                c.execute(
                    "SELECT rowid, originator_id, originator_version, topic, state "  # noqa: S608
                    f"FROM {self.events_table_name} AS e WHERE originator_id IN ({marks}) "
                    "AND originator_version = (SELECT MAX(originator_version) "
                    f"FROM {self.events_table_name} WHERE originator_id = e.originator_id)",
                    chunk,
                )
                for row in c.fetchall():
                    out[str(row[1])] = notification_from_row(row)
        return out

    def indexed_heads(self, conversation_id: str | None = None) -> dict[str, int]:
        where, params = (
            ("WHERE conversation_id = ?", [conversation_id]) if conversation_id else ("", [])
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT conversation_id, MAX(position) FROM {self.ids_table_name} "  # noqa: S608
                f"{where} GROUP BY conversation_id",
                params,
            )
            return {row[0]: row[1] for row in c.fetchall()}
