"""API key records in the deployment's SQLite file (stdlib sqlite3)."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime

from threadline.access.keys import ApiKeyRecord, dump_scopes, load_scopes

_SCHEMA = """
CREATE TABLE IF NOT EXISTS threadline_api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    tenant TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    scopes TEXT NOT NULL DEFAULT ''
)
"""
_COLUMNS = "key_id, name, tenant, secret_hash, created_at, revoked, scopes"


def _record(row: tuple[str, str, str, str, str, int, str]) -> ApiKeyRecord:
    created = datetime.fromisoformat(row[4])
    return ApiKeyRecord(
        row[0], row[1], row[2], row[3], created, bool(row[5]), scopes=load_scopes(row[6])
    )


class SQLiteKeyStore:
    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30.0)
        with self._lock, self._conn:
            self._conn.execute(_SCHEMA)
            # Tables made before keys had scopes: add the column; existing keys get none.
            columns = {
                row[1] for row in self._conn.execute("PRAGMA table_info(threadline_api_keys)")
            }
            if "scopes" not in columns:
                self._conn.execute(
                    "ALTER TABLE threadline_api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT ''"
                )

    def add(self, record: ApiKeyRecord) -> None:
        with self._lock, self._conn:
            self._conn.execute(
                f"INSERT INTO threadline_api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                (
                    record.key_id,
                    record.name,
                    record.tenant,
                    record.secret_hash,
                    record.created_at.isoformat(),
                    int(record.revoked),
                    dump_scopes(record.scopes),
                ),
            )

    def get(self, key_id: str) -> ApiKeyRecord | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM threadline_api_keys WHERE key_id = ?",  # noqa: S608
                (key_id,),
            ).fetchone()
        return None if row is None else _record(row)

    def list(self) -> list[ApiKeyRecord]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM threadline_api_keys ORDER BY created_at"  # noqa: S608
            ).fetchall()
        return [_record(row) for row in rows]

    def revoke(self, key_id: str) -> bool:
        with self._lock, self._conn:
            cur = self._conn.execute(
                "UPDATE threadline_api_keys SET revoked = 1 WHERE key_id = ?", (key_id,)
            )
        return cur.rowcount > 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()
