"""The key table in the ledger's PostgreSQL database (psycopg; shares the ledger's pool).

A destroyed key's wrapped bytes are set to NULL; PostgreSQL keeps the old row version until
VACUUM reuses its space, and WAL archives and backups keep it longer. Without the master key
those copies are useless; docs/privacy.md says how to make them useless for good.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from eventsourcing.persistence import PersistenceError
from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Composed, Identifier

from threadline.ledger.errors import StoreUnavailableError
from threadline.ledger.keyring import (
    DATA_KEYS_TABLE,
    ERASED_DIGEST,
    KEYRING_TABLE,
    SUBJECTS_TABLE,
    DataKeyRecord,
    KeyringState,
)
from threadline.ledger.recorders import EVENT_IDS_TABLE

# Any constant works; it only has to differ from the other advisory locks of the project.
_DDL_LOCK = 7205077
# A new data key and subject links are only needed by events committed *after* them: those
# commits flush the WAL up to their own record, so these rows are durable whenever an event
# that depends on them is, and they are committed without waiting for a WAL flush
# (synchronous_commit off for that statement's transaction only).
_LAZY_CTE = "lazy AS (SELECT set_config('synchronous_commit', 'off', true) AS v)"
_COLUMNS = SQL("key_id, conversation_id, master_id, wrapped, created_at, destroyed_at")


def _state(row: dict[str, Any]) -> KeyringState:
    index_key = row["index_key"]
    return KeyringState(row["master_id"], None if index_key is None else bytes(index_key))


def _record(row: dict[str, Any]) -> DataKeyRecord:
    return DataKeyRecord(
        key_id=row["key_id"],
        conversation_id=row["conversation_id"],
        master_id=row["master_id"],
        wrapped=None if row["wrapped"] is None else bytes(row["wrapped"]),
        created_at=row["created_at"],
        destroyed_at=row["destroyed_at"],
    )


class PostgresKeyTable:
    def __init__(self, datastore: PostgresDatastore, events_table: str = "stored_events") -> None:
        self.datastore = datastore
        schema = Identifier(datastore.schema or "public")
        self._t = {
            "schema": schema,
            "keyring": Identifier(KEYRING_TABLE),
            "keys": Identifier(DATA_KEYS_TABLE),
            "active": Identifier(f"{DATA_KEYS_TABLE}_active"),
            "destroyed": Identifier(f"{DATA_KEYS_TABLE}_destroyed"),
            "subjects": Identifier(SUBJECTS_TABLE),
            "events": Identifier(events_table),
            "ids": Identifier(EVENT_IDS_TABLE),
            "columns": _COLUMNS,
            "lazy": SQL(_LAZY_CTE),
        }

    def _sql(self, text: str) -> Composed:
        return SQL(text).format(**self._t)

    def _run(
        self, statements: Sequence[tuple[str, Sequence[Any]]], *, write: bool = False
    ) -> list[dict[str, Any]]:
        """Runs the statements in one transaction; returns the last one's rows."""
        rows: list[dict[str, Any]] = []
        try:
            with self.datastore.transaction(commit=write) as curs:
                for text, params in statements:
                    curs.execute(self._sql(text), params)
                    rows = curs.fetchall() if curs.description else []
        except (PersistenceError, psycopg.Error) as exc:
            raise StoreUnavailableError(f"key table: {exc}") from exc
        return rows

    def _one(self, text: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """One statement in autocommit mode: one round trip, its own transaction."""
        try:
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(self._sql(text), params, prepare=True)
                return curs.fetchall() if curs.description else []
        except (PersistenceError, psycopg.Error) as exc:
            raise StoreUnavailableError(f"key table: {exc}") from exc

    def create(self) -> None:
        self._run(
            [
                ("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,)),
                (
                    "CREATE TABLE IF NOT EXISTS {schema}.{keyring} ("
                    "id integer PRIMARY KEY CHECK (id = 1), master_id text NOT NULL, "
                    "created_at timestamptz NOT NULL DEFAULT now(), index_key bytea)",
                    (),
                ),
                (  # tables made before the index key was stored
                    "ALTER TABLE {schema}.{keyring} ADD COLUMN IF NOT EXISTS index_key bytea",
                    (),
                ),
                (
                    "CREATE TABLE IF NOT EXISTS {schema}.{keys} ("
                    "key_id text PRIMARY KEY, conversation_id text NOT NULL, "
                    "master_id text NOT NULL, wrapped bytea, created_at timestamptz NOT NULL, "
                    "destroyed_at timestamptz)",
                    (),
                ),
                (
                    "CREATE UNIQUE INDEX IF NOT EXISTS {active} ON {schema}.{keys} "
                    "(conversation_id) WHERE wrapped IS NOT NULL",
                    (),
                ),
                (  # erasure_mark(): max(destroyed_at) through this index
                    "CREATE INDEX IF NOT EXISTS {destroyed} ON {schema}.{keys} "
                    "(destroyed_at) WHERE destroyed_at IS NOT NULL",
                    (),
                ),
                (
                    "CREATE TABLE IF NOT EXISTS {schema}.{subjects} ("
                    "blind text NOT NULL, conversation_id text NOT NULL, "
                    "PRIMARY KEY (blind, conversation_id))",
                    (),
                ),
            ],
            write=True,
        )

    def keyring_state(self) -> KeyringState | None:
        rows = self._run([("SELECT master_id, index_key FROM {schema}.{keyring} WHERE id = 1", ())])
        return _state(rows[0]) if rows else None

    def claim_master(self, master_id: str, index_key: bytes) -> KeyringState:
        rows = self._run(
            [
                (
                    "INSERT INTO {schema}.{keyring} (id, master_id, index_key) "
                    "VALUES (1, %s, %s) ON CONFLICT DO NOTHING",
                    (master_id, index_key),
                ),
                ("SELECT master_id, index_key FROM {schema}.{keyring} WHERE id = 1", ()),
            ],
            write=True,
        )
        return _state(rows[0])

    def store_index(self, master_id: str, index_key: bytes) -> None:
        self._run(
            [
                (
                    "UPDATE {schema}.{keyring} SET index_key = %s "
                    "WHERE id = 1 AND master_id = %s AND index_key IS NULL",
                    (index_key, master_id),
                )
            ],
            write=True,
        )

    def set_master(self, old_id: str, new_id: str, index_key: bytes) -> bool:
        rows = self._run(
            [
                (
                    "UPDATE {schema}.{keyring} SET master_id = %s, index_key = %s "
                    "WHERE id = 1 AND master_id = %s RETURNING id",
                    (new_id, index_key, old_id),
                )
            ],
            write=True,
        )
        return bool(rows)

    def active_keys_after(self, after: str, limit: int) -> list[DataKeyRecord]:
        rows = self._run(
            [
                (
                    "SELECT {columns} FROM {schema}.{keys} "
                    "WHERE key_id > %s AND wrapped IS NOT NULL ORDER BY key_id LIMIT %s",
                    (after, limit),
                )
            ]
        )
        return [_record(r) for r in rows]

    def rewrap(self, updates: Sequence[tuple[str, str, str, bytes]]) -> int:
        if not updates:
            return 0
        rows = self._run(
            [
                (
                    "UPDATE {schema}.{keys} AS k SET master_id = u.new_id, wrapped = u.wrapped "
                    "FROM unnest(%s::text[], %s::text[], %s::text[], %s::bytea[]) "
                    "AS u(key_id, old_id, new_id, wrapped) "
                    "WHERE k.key_id = u.key_id AND k.master_id = u.old_id "
                    "AND k.wrapped IS NOT NULL RETURNING k.key_id",
                    (
                        [u[0] for u in updates],
                        [u[1] for u in updates],
                        [u[2] for u in updates],
                        [u[3] for u in updates],
                    ),
                )
            ],
            write=True,
        )
        return len(rows)

    def active_key(self, conversation_id: str) -> DataKeyRecord | None:
        rows = self._run(
            [
                (
                    "SELECT {columns} FROM {schema}.{keys} "
                    "WHERE conversation_id = %s AND wrapped IS NOT NULL",
                    (conversation_id,),
                )
            ]
        )
        return _record(rows[0]) if rows else None

    def ensure_key(self, candidate: DataKeyRecord, links: Sequence[str] = ()) -> DataKeyRecord:
        # One statement, one round trip (a new conversation's only extra one): the links
        # and the key in data-modifying CTEs, committed lazily (see _LAZY_CTE).
        rows = self._one(
            "WITH {lazy}, "
            "links AS (INSERT INTO {schema}.{subjects} (blind, conversation_id) "
            "  SELECT b, %s FROM unnest(%s::text[]) AS b, lazy ON CONFLICT DO NOTHING), "
            "ins AS (INSERT INTO {schema}.{keys} ({columns}) "
            "  SELECT %s, %s, %s, %s, %s, NULL FROM lazy ON CONFLICT DO NOTHING "
            "  RETURNING {columns}) "
            "SELECT {columns} FROM ins",
            (
                candidate.conversation_id,
                list(links),
                candidate.key_id,
                candidate.conversation_id,
                candidate.master_id,
                candidate.wrapped,
                candidate.created_at,
            ),
        )
        if rows:
            return _record(rows[0])
        # Another process created the conversation's key first (committed, since our
        # insert waited for it): this new statement sees it.
        existing = self.active_key(candidate.conversation_id)
        if existing is None:
            raise StoreUnavailableError(
                f"key table: no active key for conversation {candidate.conversation_id}"
            )
        return existing

    def get_key(self, key_id: str) -> DataKeyRecord | None:
        rows = self._run([("SELECT {columns} FROM {schema}.{keys} WHERE key_id = %s", (key_id,))])
        return _record(rows[0]) if rows else None

    def link(self, conversation_id: str, blinds: Sequence[str]) -> None:
        self._one(
            "WITH {lazy} "
            "INSERT INTO {schema}.{subjects} (blind, conversation_id) "
            "SELECT b, %s FROM unnest(%s::text[]) AS b, lazy ON CONFLICT DO NOTHING",
            (conversation_id, list(blinds)),
        )

    def conversations(self, blinds: Sequence[str]) -> list[str]:
        if not blinds:
            return []
        rows = self._run(
            [
                (
                    "SELECT DISTINCT conversation_id FROM {schema}.{subjects} "
                    "WHERE blind = ANY(%s) ORDER BY conversation_id",
                    (list(blinds),),
                )
            ]
        )
        return [r["conversation_id"] for r in rows]

    def erasure_mark(self) -> str:
        rows = self._one(
            "SELECT max(destroyed_at) AS mark FROM {schema}.{keys} WHERE destroyed_at IS NOT NULL",
            (),
        )
        return str(rows[0]["mark"]) if rows else "None"

    def destroy(self, key_id: str, at: datetime) -> bool:
        rows = self._run(
            [
                (
                    "WITH gone AS ("
                    "  UPDATE {schema}.{keys} SET wrapped = NULL, destroyed_at = %s "
                    "  WHERE key_id = %s AND wrapped IS NOT NULL RETURNING conversation_id"
                    "), ids AS ("
                    "  UPDATE {schema}.{ids} SET digest = %s WHERE event_id IN ("
                    "    SELECT (convert_from(e.state, 'UTF8')::jsonb ->> 'event_id')::uuid "
                    "    FROM {schema}.{events} e JOIN gone ON e.originator_id = "
                    "gone.conversation_id)"
                    ") SELECT conversation_id FROM gone",
                    (at, key_id, ERASED_DIGEST),
                )
            ],
            write=True,
        )
        return bool(rows)
