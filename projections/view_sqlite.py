"""The metrics read model on SQLite (a leaf backend file: eventsourcing's SQLite datastore).

eventsourcing's SQLite recorder cannot push notifications (`subscribe` raises
NotImplementedError), so runners *pull* the global log (`projections.runner`); the tracking
guarantees are the same because position, gaps and view rows change in one transaction.
"""

# Table names are fixed identifiers chosen in code, never input; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore, SQLiteTrackingRecorder

from threadline.projections.view_sql import SqlMetricsView


class SQLiteMetricsView(SqlMetricsView, SQLiteTrackingRecorder):
    def __init__(self, datastore: SQLiteDatastore) -> None:
        SqlMetricsView.__init__(self)
        SQLiteTrackingRecorder.__init__(self, datastore)
        self.owned_datastore = datastore

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            *self.create_statements("TEXT", "REAL", "INTEGER", " WITHOUT ROWID"),
        ]

    def create_table(self) -> None:
        super().create_table()
        with self._transaction(commit=True) as c:
            self._ensure_totals_row(c)

    @contextmanager
    def _transaction(self, *, commit: bool) -> Iterator[Any]:
        with self.datastore.transaction(commit=commit) as c:
            yield c

    def _lock(self, c: Any) -> None:
        # A write first: the transaction takes SQLite's write lock now, before it reads, so it
        # never has to upgrade a stale read snapshot (SQLITE_BUSY_SNAPSHOT under WAL).
        c.execute(f"UPDATE {self.t_totals} SET data = data WHERE name = ?", (self.name,))

    def _position(self, c: Any) -> int:
        c.execute(self.select_max_tracking_id_statement, (self.tracking_name,))
        row = c.fetchone()
        return int(row[0]) if row is not None and row[0] is not None else 0

    def _insert_tracking(self, c: SQLiteCursor, tracking: Tracking) -> None:
        SQLiteTrackingRecorder._insert_tracking(self, c, tracking)

    def _delete_tracking(self, c: Any) -> None:
        c.execute("DELETE FROM tracking WHERE application_name = ?", (self.tracking_name,))

    def close(self) -> None:
        self.owned_datastore.close()


def open_sqlite_view(path: str) -> SQLiteMetricsView:
    """`path` as eventsourcing's SQLiteDatastore takes it (a file, or a `file:` URI)."""
    view = SQLiteMetricsView(SQLiteDatastore(db_name=path))
    view.create_table()
    return view
