"""Partitioned global log (issue 18): THREADLINE_LOG_PARTITIONS = N.

With N = 1 (the default) nothing here is used and the storage is exactly the unpartitioned
one: one global sequence (`notification_id`), kept in commit order by one table lock.

With N > 1 a conversation belongs to partition `partition_of(conversation_id, N)` (SHA-256
of the id, mod N: stable across processes and versions). Each partition has its own
gap-free sequence, issued under its own lock, so appends to different partitions no longer
wait for each other. A conversation stays in one partition, so it keeps its single order
and its hash chain. Two tables carry this (created only when N > 1):

- `threadline_log_heads (partition, head)`: one row per partition; the row is the
  partition's lock (row lock held to commit) and `head` its last issued sequence. The
  number of rows is the partition count the database was created with: opening it with
  another N is refused (`PartitionCountError`), as is opening an unpartitioned log that
  already holds events with N > 1 (changing N needs a re-partitioning copy, docs/scaling.md).
- `threadline_log_partitions (partition, seq, notification_id)`: the partition's log, in
  commit order; readers page it by `(partition, seq)` (`select_partition`).

The global `notification_id` is still unique but, with N > 1, not in commit order across
partitions: a reader must follow the partitions, not the global sequence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore

from threadline.ledger.errors import StoreUnavailableError
from threadline.ledger.recorders import SQLiteLedgerRecorder, notification_from_row

HEADS_TABLE = "threadline_log_heads"
PARTITION_LOG_TABLE = "threadline_log_partitions"
MAX_PARTITIONS = 256


class PartitionCountError(StoreUnavailableError):
    """The database was created with another partition count."""


def partition_of(conversation_id: str, partitions: int) -> int:
    """The conversation's partition: stable (SHA-256, not Python's salted `hash`)."""
    if partitions <= 1:
        return 0
    digest = hashlib.sha256(conversation_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % partitions


def check_count(found: int | None, wanted: int, has_events: bool) -> None:
    """`found`: the partition rows in the database (None: no heads table)."""
    if found is None:
        if wanted > 1 and has_events:
            raise PartitionCountError(
                f"the log already holds events in 1 partition; THREADLINE_LOG_PARTITIONS="
                f"{wanted} would re-map conversations (see docs/scaling.md, re-partitioning)"
            )
        return
    if found != wanted:
        raise PartitionCountError(
            f"the log was created with {found} partitions, not THREADLINE_LOG_PARTITIONS="
            f"{wanted} (see docs/scaling.md, re-partitioning)"
        )


def partition_notification(row: Sequence[Any]) -> tuple[int, Notification]:
    """`(seq, notification_id, conversation_id, position, topic, state)` → (seq, event)."""
    return row[0], notification_from_row(row[1:])


class PartitionedSQLiteRecorder(SQLiteLedgerRecorder):
    """SQLite has one writer at a time anyway: the partitions give the same reading model
    (and the same tests) as on PostgreSQL, not more throughput."""

    def __init__(self, datastore: SQLiteDatastore, partitions: int) -> None:
        self.partitions = partitions
        super().__init__(datastore)

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {HEADS_TABLE} ("
            "partition INTEGER PRIMARY KEY, head INTEGER NOT NULL)"
        )
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {PARTITION_LOG_TABLE} ("
            "partition INTEGER NOT NULL, seq INTEGER NOT NULL, notification_id INTEGER "
            "NOT NULL, PRIMARY KEY (partition, seq)) WITHOUT ROWID"
        )
        return statements

    def create_table(self) -> None:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT name FROM sqlite_master WHERE type='table' AND name=?", [HEADS_TABLE])
            exists = c.fetchone() is not None
            found = None
            if exists:
                c.execute(f"SELECT COUNT(*) FROM {HEADS_TABLE}")  # noqa: S608
                found = c.fetchone()[0]
            c.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name=?",
                [self.events_table_name],
            )
            has_events = False
            if c.fetchone() is not None:
                c.execute(f"SELECT 1 FROM {self.events_table_name} LIMIT 1")  # noqa: S608
                has_events = c.fetchone() is not None
        check_count(found, self.partitions, has_events)
        super().create_table()
        with self.datastore.transaction(commit=True) as c:
            c.executemany(
                f"INSERT OR IGNORE INTO {HEADS_TABLE} VALUES (?, 0)",  # noqa: S608
                [(p,) for p in range(self.partitions)],
            )

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        sequences = super()._insert_events(c, stored_events, **kwargs)
        assert sequences is not None
        rows = []
        for e, nid in zip(stored_events, sequences, strict=True):
            p = partition_of(str(e.originator_id), self.partitions)
            c.execute(
                f"UPDATE {HEADS_TABLE} SET head = head + 1 WHERE partition = ? "  # noqa: S608
                "RETURNING head",
                [p],
            )
            rows.append((p, c.fetchone()[0], nid))
        c.executemany(f"INSERT INTO {PARTITION_LOG_TABLE} VALUES (?,?,?)", rows)  # noqa: S608
        return sequences

    def select_partition(
        self, partition: int, gt: int = 0, limit: int = 1000
    ) -> list[tuple[int, Notification]]:
        """The partition's events after sequence `gt`, in commit order: (seq, event)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT p.seq, e.rowid, e.originator_id, e.originator_version, e.topic, "  # noqa: S608
                f"e.state FROM {PARTITION_LOG_TABLE} p JOIN {self.events_table_name} e "
                "ON e.rowid = p.notification_id WHERE p.partition = ? AND p.seq > ? "
                "ORDER BY p.seq LIMIT ?",
                [partition, gt, limit],
            )
            return [partition_notification(row) for row in c.fetchall()]

    def partition_heads(self) -> dict[int, int]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT partition, head FROM {HEADS_TABLE} ORDER BY partition")  # noqa: S608
            return {row[0]: row[1] for row in c.fetchall()}


def open_sqlite_recorder(datastore: SQLiteDatastore, partitions: int) -> SQLiteLedgerRecorder:
    """The recorder for `partitions`; N = 1 is the unpartitioned one, refused on a database
    created partitioned."""
    if partitions > 1:
        recorder: SQLiteLedgerRecorder = PartitionedSQLiteRecorder(datastore, partitions)
    else:
        with datastore.transaction(commit=False) as c:
            c.execute("SELECT name FROM sqlite_master WHERE type='table' AND name=?", [HEADS_TABLE])
            if c.fetchone() is not None:
                c.execute(f"SELECT COUNT(*) FROM {HEADS_TABLE}")  # noqa: S608
                check_count(c.fetchone()[0], 1, True)
        recorder = SQLiteLedgerRecorder(datastore)
    recorder.create_table()
    return recorder
