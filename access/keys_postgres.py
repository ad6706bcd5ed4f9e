"""API key records in PostgreSQL (psycopg; the only file of channels that imports it)."""

from __future__ import annotations

import threading
from datetime import datetime

import psycopg

from threadline.access.keys import ApiKeyRecord, dump_scopes, load_scopes

_SCHEMA = """
CREATE TABLE IF NOT EXISTS threadline_api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    tenant TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE,
    scopes TEXT NOT NULL DEFAULT ''
)
"""
# Tables made before keys had scopes: add the column; existing keys get none.
_MIGRATE = (
    "ALTER TABLE threadline_api_keys ADD COLUMN IF NOT EXISTS scopes TEXT NOT NULL DEFAULT ''"
)
_COLUMNS = "key_id, name, tenant, secret_hash, created_at, revoked, scopes"


def _record(row: tuple[str, str, str, str, datetime, bool, str]) -> ApiKeyRecord:
    return ApiKeyRecord(
        row[0], row[1], row[2], row[3], row[4], bool(row[5]), scopes=load_scopes(row[6])
    )


class PostgresKeyStore:
    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._conn = psycopg.connect(url, autocommit=True)
        # Several processes may start at once; the advisory lock serialises the DDL.
        with self._lock, self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(7205011)")
            self._conn.execute(_SCHEMA)
            # Checked first: ALTER TABLE locks the table even when it then does nothing.
            has_scopes = self._conn.execute(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = 'threadline_api_keys' AND column_name = 'scopes'"
            ).fetchone()
            if has_scopes is None:
                self._conn.execute(_MIGRATE)

    def add(self, record: ApiKeyRecord) -> None:
        with self._lock:
            self._conn.execute(
                f"INSERT INTO threadline_api_keys ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)",  # noqa: S608
                (
                    record.key_id,
                    record.name,
                    record.tenant,
                    record.secret_hash,
                    record.created_at,
                    record.revoked,
                    dump_scopes(record.scopes),
                ),
            )

    def get(self, key_id: str) -> ApiKeyRecord | None:
        query = f"SELECT {_COLUMNS} FROM threadline_api_keys WHERE key_id = %s"  # noqa: S608
        with self._lock:
            try:
                row = self._conn.execute(query, (key_id,)).fetchone()
            except psycopg.OperationalError:
                # The database restarted under a long-lived server: reconnect once, so
                # authentication does not fail for good (a second failure is raised).
                self._conn.close()
                self._conn = psycopg.connect(self._url, autocommit=True)
                row = self._conn.execute(query, (key_id,)).fetchone()
        return None if row is None else _record(row)

    def list(self) -> list[ApiKeyRecord]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM threadline_api_keys ORDER BY created_at"  # noqa: S608
            ).fetchall()
        return [_record(row) for row in rows]

    def revoke(self, key_id: str) -> bool:
        with self._lock:
            cur = self._conn.execute(
                "UPDATE threadline_api_keys SET revoked = TRUE WHERE key_id = %s", (key_id,)
            )
        return cur.rowcount > 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()
