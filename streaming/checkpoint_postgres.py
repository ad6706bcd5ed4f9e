"""The relay checkpoint on PostgreSQL (leaf adapter: psycopg).

One connection, used from the relay's thread only. `lead()` takes a session-level advisory
lock named after the checkpoint, so replicas of the relay can run for availability while
only one publishes; the lock goes with the connection, so a crashed leader's standby takes
over as soon as PostgreSQL notices the dead session.
"""

# Table names are constants; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

import zlib

import psycopg

from threadline.projections.views import Batch, TrackingState
from threadline.streaming.checkpoint import T_GAPS, T_POSITIONS, Checkpoint, apply_batch

_LOCK_CLASS = 0x7468  # "th": keeps our advisory locks apart from other users of the database


class PostgresCheckpoint(Checkpoint):
    def __init__(self, url: str, name: str = "relay", *, connect_timeout: int = 5) -> None:
        super().__init__(name)
        self._url = url
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._leader = False
        with self._connection() as conn, conn.transaction():
            conn.execute(f"SELECT pg_advisory_xact_lock({_LOCK_CLASS}, 0)")  # one DDL at a time
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {T_POSITIONS} "
                "(name text PRIMARY KEY, position bigint NOT NULL)"
            )
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {T_GAPS} (name text NOT NULL, sequence bigint "
                "NOT NULL, first_seen double precision NOT NULL, PRIMARY KEY (name, sequence))"
            )

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
            self._leader = False
            self._conn = psycopg.connect(
                self._url, autocommit=True, connect_timeout=self._connect_timeout
            )
        return self._conn

    def _read(self, conn: psycopg.Connection[tuple[object, ...]], *, lock: bool) -> TrackingState:
        suffix = " FOR UPDATE" if lock else ""
        row = conn.execute(
            f"SELECT position FROM {T_POSITIONS} WHERE name = %s{suffix}", (self.name,)
        ).fetchone()
        gaps = conn.execute(
            f"SELECT sequence, first_seen FROM {T_GAPS} WHERE name = %s", (self.name,)
        ).fetchall()
        return TrackingState(
            int(str(row[0])) if row else 0, {int(str(s)): float(str(t)) for s, t in gaps}
        )

    def tracking(self) -> TrackingState:
        conn = self._connection()
        with conn.transaction():
            return self._read(conn, lock=False)

    def record(self, batch: Batch) -> None:
        conn = self._connection()
        with conn.transaction():
            conn.execute(
                f"INSERT INTO {T_POSITIONS} (name, position) VALUES (%s, 0) "
                "ON CONFLICT (name) DO NOTHING",
                (self.name,),
            )
            new = apply_batch(self._read(conn, lock=True), batch)
            conn.execute(
                f"UPDATE {T_POSITIONS} SET position = %s WHERE name = %s", (new.position, self.name)
            )
            gone = [(self.name, s) for s in (*batch.filled, *batch.dropped)]
            if gone:
                with conn.cursor() as cur:
                    cur.executemany(f"DELETE FROM {T_GAPS} WHERE name = %s AND sequence = %s", gone)
            if batch.new_gaps:
                with conn.cursor() as cur:
                    cur.executemany(
                        f"INSERT INTO {T_GAPS} (name, sequence, first_seen) VALUES (%s, %s, %s)",
                        [(self.name, s, t) for s, t in sorted(batch.new_gaps.items())],
                    )

    def reset(self) -> None:
        conn = self._connection()
        with conn.transaction():
            conn.execute(f"DELETE FROM {T_POSITIONS} WHERE name = %s", (self.name,))
            conn.execute(f"DELETE FROM {T_GAPS} WHERE name = %s", (self.name,))

    def lead(self) -> bool:
        conn = self._connection()
        if not self._leader:
            key = zlib.crc32(f"threadline.relay:{self.name}".encode()) & 0x7FFFFFFF
            row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (_LOCK_CLASS, key)).fetchone()
            self._leader = bool(row and row[0])
        return self._leader

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._leader = False
