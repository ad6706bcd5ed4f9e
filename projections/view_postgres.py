"""The metrics read model on PostgreSQL (a leaf backend file: psycopg via eventsourcing).

Same tables and statements as SQLite (`threadline.projections.view_sql`); the position is kept in
eventsourcing's single-row tracking table `projection_tracking`. A commit first locks the
view's totals row (`SELECT … FOR UPDATE`), so two runners of one view take turns and the
second one's stale batch fails its checks instead of applying twice.
"""

from __future__ import annotations

# Table names are fixed identifiers chosen in code (the schema is checked below); values are
# always bound.
# ruff: noqa: S608
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg.sql import SQL, Composed

from threadline.projections.errors import ProjectionError
from threadline.projections.view_sql import SqlMetricsView

TRACKING_TABLE = "projection_tracking"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class PostgresMetricsView(SqlMetricsView, PostgresTrackingRecorder):
    placeholder = "%s"

    def __init__(self, datastore: PostgresDatastore) -> None:
        schema = datastore.schema
        if not _IDENTIFIER.fullmatch(schema):
            raise ProjectionError(f"unusable PostgreSQL schema name {schema!r}")
        SqlMetricsView.__init__(self, prefix=f"{schema}.projection_")
        PostgresTrackingRecorder.__init__(self, datastore, tracking_table_name=TRACKING_TABLE)
        self.tracking_table = f"{schema}.{TRACKING_TABLE}"
        self.sql_create_statements.extend(
            _composed(statement)
            for statement in self.create_statements("text", "double precision", "bigint")
        )

    def create_table(self) -> None:
        super().create_table()
        with self._transaction(commit=True) as c:
            self._ensure_totals_row(c)

    @contextmanager
    def _transaction(self, *, commit: bool) -> Iterator[Any]:
        with self.datastore.transaction(commit=commit) as c:
            yield c

    def _lock(self, c: Any) -> None:
        c.execute(f"SELECT name FROM {self.t_totals} WHERE name = %s FOR UPDATE", (self.name,))

    def _position(self, c: Any) -> int:
        c.execute(
            f"SELECT notification_id AS n FROM {self.tracking_table} WHERE application_name = %s",
            (self.tracking_name,),
        )
        row = c.fetchone()
        return int(row["n"]) if row is not None and row["n"] is not None else 0

    def _insert_tracking(self, c: Any, tracking: Tracking) -> None:
        PostgresTrackingRecorder._insert_tracking(self, c, tracking)

    def _delete_tracking(self, c: Any) -> None:
        c.execute(
            f"DELETE FROM {self.tracking_table} WHERE application_name = %s",
            (self.tracking_name,),
        )

    def close(self) -> None:
        self.datastore.close()


def _composed(statement: str) -> Composed:
    # Built from fixed names and a schema checked against _IDENTIFIER above.
    return Composed([SQL(statement)])


def open_postgres_view(url: str) -> PostgresMetricsView:
    from threadline.ledger.postgres import datastore_from_url

    view = PostgresMetricsView(datastore_from_url(url))
    view.create_table()
    return view
