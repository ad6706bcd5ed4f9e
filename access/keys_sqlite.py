"""API key records in the deployment's SQLite file (stdlib sqlite3)."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime

from threadline.access.keys import ApiKeyRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS threadline_api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    tenant TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
)
"""
_COLUMNS = "key_id, name, tenant, secret_hash, created_at, revoked"


def _record(row: tuple[str, str, str, str, str, int]) -> ApiKeyRecord:
    created = datetime.fromisoformat(row[4])
    return ApiKeyRecord(row[0], row[1], row[2], row[3], created, bool(row[5]))


class SQLiteKeyStore:
    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30.0)
        with self._lock, self._conn:
            self._conn.execute(_SCHEMA)

    def add(self, record: ApiKeyRecord) -> None:
        with self._lock, self._conn:
            self._conn.execute(
                f"INSERT INTO threadline_api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",  # noqa: S608
                (
                    record.key_id,
                    record.name,
                    record.tenant,
                    record.secret_hash,
                    record.created_at.isoformat(),
                    int(record.revoked),
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
