"""Which replica signs checkpoints, on PostgreSQL (leaf adapter: psycopg).

A session-level advisory lock on a connection of its own, as the relay leader takes
(`streaming/checkpoint_postgres.py`): the lock goes with the session, so when the writing
replica dies another takes over once PostgreSQL notices. Used from the job's worker thread
only, one run at a time.
"""

from __future__ import annotations

import contextlib
import zlib

import psycopg

_LOCK_CLASS = 0x7468  # "th", shared with the relay's locks; the key below tells them apart
_LOCK_KEY = zlib.crc32(b"threadline.ledger-checkpoint") & 0x7FFFFFFF


class PostgresLead:
    def __init__(self, dsn: str, *, connect_timeout: int = 5) -> None:
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._leader = False

    def lead(self) -> bool:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if conn is not None:
                conn.close()
            self._leader = False  # a lost session lost its lock
            conn = self._conn = psycopg.connect(
                self._dsn, autocommit=True, connect_timeout=self._connect_timeout
            )
        if not self._leader:
            row = conn.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (_LOCK_CLASS, _LOCK_KEY)
            ).fetchone()
            self._leader = bool(row and row[0])
        else:
            conn.execute("SELECT 1")  # notices a dropped session now rather than after a write
        return self._leader

    def close(self) -> None:
        if self._conn is not None:
            if self._leader and not (self._conn.closed or self._conn.broken):
                # The server drops a closed session's locks only once its backend has seen
                # the disconnect; unlocking first hands over at once on a clean stop.
                # A failure is harmless: the session is going anyway, its lock with it.
                with contextlib.suppress(psycopg.Error):
                    self._conn.execute(
                        "SELECT pg_advisory_unlock(%s, %s)", (_LOCK_CLASS, _LOCK_KEY)
                    )
            self._conn.close()
            self._conn = None
        self._leader = False
