"""Tool tables in PostgreSQL (psycopg 3, from the `postgres` extra)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool

from threadline.agent.sqltools.schema import TABLES
from threadline.agent.sqltools.sql import SqlToolBackend


class _PgTx:
    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self._cur = cur

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cur.execute(_pg(sql), tuple(params))
        return list(self._cur.fetchall())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cur.execute(_pg(sql), tuple(params))
        return self._cur.rowcount


def _pg(sql: str) -> str:
    # The shared SQL uses "?" placeholders and never a literal "?" or "%".
    return sql.replace("?", "%s")


class PostgresToolBackend(SqlToolBackend):
    def __init__(self, url: str, clock: Callable[[], datetime] | None = None) -> None:
        super().__init__(clock)
        self._pool = ConnectionPool(url, min_size=1, max_size=4, open=True)
        self.create_tables()

    @contextmanager
    def transaction(self) -> Iterator[_PgTx]:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield _PgTx(cur)

    def create_tables(self) -> None:
        with self.transaction() as tx:
            # CREATE TABLE IF NOT EXISTS races between processes on PostgreSQL; serialise it.
            tx.rows("SELECT pg_advisory_xact_lock(727001)")
            for statement in TABLES:
                tx.execute(statement)

    def is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, pg_errors.UniqueViolation)

    def close(self) -> None:
        self._pool.close()
