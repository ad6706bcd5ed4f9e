"""PostgreSQL `OperatorStore` (leaf adapter: the only console module importing psycopg)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from threadline.channels.console.errors import OperatorStoreUnavailableError
from threadline.channels.console.operators_sql import SqlOperatorStore


class PostgresOperatorStore(SqlOperatorStore):
    P = "%s"

    def __init__(self, url: str) -> None:
        self._url = url
        try:
            self.create_schema()
        except psycopg.OperationalError as exc:
            raise OperatorStoreUnavailableError(
                f"cannot reach the operator database: {exc}"
            ) from None

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor[tuple[object, ...]]]:
        with psycopg.connect(self._url, connect_timeout=10) as conn, conn.cursor() as cur:
            yield cur

    def _is_unique_violation(self, exc: Exception) -> bool:
        return isinstance(exc, pg_errors.UniqueViolation)

    def _has_column(self, cur: Any, table: str, column: str) -> bool:
        cur.execute(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s AND column_name = %s",
            (table, column),
        )
        return cur.fetchone() is not None

    def close(self) -> None:
        return None
