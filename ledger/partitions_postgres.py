"""PostgreSQL side of the partitioned log (ledger/partitions.py), THREADLINE_LOG_PARTITIONS > 1.

The insert function `threadline_insert_partitioned` replaces the unpartitioned function's
`LOCK TABLE … EXCLUSIVE` by row locks on the touched partitions' `threadline_log_heads`
rows, taken in ascending partition order (so two batches spanning partitions cannot
deadlock) and held to commit: within a partition, sequences are issued and committed in one
order, which is what a reader paging by `(partition, seq)` needs; other partitions proceed
in parallel. NOTIFY is sent after the commit, from a separate statement: a NOTIFY inside the
transaction takes PostgreSQL's database-wide notify lock at commit and would serialise every
commit (the fsync included) again, whatever the partitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresDatastore
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from threadline.ledger.partitions import (
    HEADS_TABLE,
    PARTITION_LOG_TABLE,
    check_count,
    partition_notification,
    partition_of,
)
from threadline.ledger.postgres import SCHEMA_LOCK, PostgresLedgerRecorder, insert_events_and_ids
from threadline.ledger.recorders import EVENT_IDS_TABLE, EventIdRecord

PARTITIONED_INSERT_FUNCTION = "threadline_insert_partitioned"
READ_AFTER_FUNCTION = "threadline_read_after"


class PartitionedPostgresRecorder(PostgresLedgerRecorder):
    def __init__(self, datastore: PostgresDatastore, partitions: int) -> None:
        super().__init__(datastore)
        self.partitions = partitions
        schema = Identifier(self.datastore.schema)
        table = Identifier(self.events_table_name)
        ids = Identifier(EVENT_IDS_TABLE)
        heads = Identifier(HEADS_TABLE)
        plog = Identifier(PARTITION_LOG_TABLE)
        self._heads_exists = SQL("SELECT to_regclass(%s) IS NOT NULL AS present")
        self._count_heads = SQL("SELECT COUNT(*) AS n FROM {schema}.{heads}").format(
            schema=schema, heads=heads
        )
        self._any_event = SQL("SELECT EXISTS (SELECT 1 FROM {schema}.{table}) AS present").format(
            schema=schema, table=table
        )
        self._seed_heads = SQL(
            "INSERT INTO {schema}.{heads} SELECT g, 0 FROM generate_series(0, %s - 1) g "
            "ON CONFLICT DO NOTHING"
        ).format(schema=schema, heads=heads)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{heads} ("
                "partition int PRIMARY KEY, head bigint NOT NULL)"
            ).format(schema=schema, heads=heads)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{plog} ("
                "partition int NOT NULL, seq bigint NOT NULL, notification_id bigint NOT NULL, "
                "PRIMARY KEY (partition, seq))"
            ).format(schema=schema, plog=plog)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{fn}("
                "new_events {schema}.{event_type}[], new_ids uuid[], new_digests text[], "
                "new_parts int[]) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
                "BEGIN "
                "  SET LOCAL lock_timeout = '{lock_timeout}s'; "
                "  PERFORM 1 FROM {schema}.{heads} WHERE partition = ANY(new_parts) "
                "    ORDER BY partition FOR UPDATE; "
                "  RETURN QUERY {inserts}  ), numbered AS ("
                "    SELECT ins.seq, p.part, "
                "      row_number() OVER (PARTITION BY p.part ORDER BY ins.seq) AS rn "
                "    FROM unnest(new_parts) WITH ORDINALITY AS p(part, ord) "
                "    JOIN unnest(new_events) WITH ORDINALITY "
                "      AS e(originator_id, originator_version, topic, state, ord) "
                "      ON e.ord = p.ord "
                "    JOIN ins ON ins.cid = e.originator_id AND ins.pos = e.originator_version"
                "  ), bumped AS ("
                "    UPDATE {schema}.{heads} h SET head = h.head + c.n "
                "    FROM (SELECT part, COUNT(*) AS n FROM numbered GROUP BY part) c "
                "    WHERE h.partition = c.part RETURNING h.partition, h.head - c.n AS base"
                "  ), logged AS ("
                "    INSERT INTO {schema}.{plog} (partition, seq, notification_id) "
                "    SELECT n.part, b.base + n.rn, n.seq FROM numbered n "
                "    JOIN bumped b ON b.partition = n.part"
                "  ) "
                "  SELECT ins.seq FROM ins ORDER BY ins.seq; "
                "END; $BODY$"
            ).format(
                schema=schema,
                fn=Identifier(PARTITIONED_INSERT_FUNCTION),
                inserts=insert_events_and_ids(schema, table, ids),
                event_type=Identifier(self.stored_event_type_name),
                lock_timeout=self.datastore.lock_timeout,
                table=table,
                ids=ids,
                heads=heads,
                plog=plog,
            )
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{fn}(p_after bigint, p_limit int) "
                "RETURNS TABLE (notification_id bigint, originator_id text, "
                "originator_version bigint, topic text, state bytea) "
                "LANGUAGE plpgsql VOLATILE AS $BODY$ "
                "BEGIN "
                "  PERFORM 1 FROM {schema}.{heads} ORDER BY partition FOR SHARE; "
                "  RETURN QUERY SELECT e.notification_id, e.originator_id::text, "
                "    e.originator_version::bigint, e.topic, e.state FROM {schema}.{table} e "
                "    WHERE e.notification_id > p_after ORDER BY e.notification_id LIMIT p_limit; "
                "END; $BODY$"
            ).format(schema=schema, fn=Identifier(READ_AFTER_FUNCTION), heads=heads, table=table)
        )
        self._call_read_after = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {schema}.{fn}(%s, %s)"
        ).format(schema=schema, fn=Identifier(READ_AFTER_FUNCTION))
        self._call_partitioned = SQL("SELECT * FROM {schema}.{fn}(%s, %s, %s, %s)").format(
            schema=schema, fn=Identifier(PARTITIONED_INSERT_FUNCTION)
        )
        self._notify = SQL("NOTIFY {0}").format(Identifier(self.channel_name))
        self._select_partition = SQL(
            "SELECT p.seq, e.notification_id, e.originator_id, e.originator_version, e.topic, "
            "e.state FROM {schema}.{plog} p JOIN {schema}.{table} e "
            "ON e.notification_id = p.notification_id WHERE p.partition = %s AND p.seq > %s "
            "ORDER BY p.seq LIMIT %s"
        ).format(schema=schema, plog=plog, table=table)
        self._partition_heads = SQL(
            "SELECT partition, head FROM {schema}.{heads} ORDER BY partition"
        ).format(schema=schema, heads=heads)

    def create_table(self) -> None:
        with self.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
            try:
                self._check_existing(conn)
                super(PostgresLedgerRecorder, self).create_table()
                conn.execute(self._seed_heads, (self.partitions,))
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))

    def _check_existing(self, conn: Any) -> None:
        qualified = f"{self.datastore.schema}.{HEADS_TABLE}"
        present = conn.execute(self._heads_exists, (qualified,)).fetchone()["present"]
        found = conn.execute(self._count_heads).fetchone()["n"] if present else None
        events = f"{self.datastore.schema}.{self.events_table_name}"
        has_table = conn.execute(self._heads_exists, (events,)).fetchone()["present"]
        has_events = bool(has_table and conn.execute(self._any_event).fetchone()["present"])
        check_count(found, self.partitions, has_events)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        records: Sequence[EventIdRecord] = kwargs.get("event_ids") or ()
        events = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]
        parts = [partition_of(str(e.originator_id), self.partitions) for e in stored_events]
        ids = [UUID(r.event_id) for r in records]
        digests = [r.digest for r in records]
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._call_partitioned, (events, ids, digests, parts), prepare=True)
            sequences = [row[PARTITIONED_INSERT_FUNCTION] for row in curs.fetchall()]
            curs.execute(self._notify)  # after commit (autocommit connection), see above
            return sequences

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """The global log after `start`, safe for a reader that pages by `sequence > last`.

        With N partitions, global ids are issued in commit order only within a partition:
        a slower partition's transaction may commit a lower id after a higher one is
        visible. `threadline_read_after` first takes a share lock on every partition's row,
        which waits for the (at most one per partition) append in flight to commit and
        holds new ones off for the read; the page read then has nothing left to appear
        below it. One round trip; writers wait only for a read, never for an fsync."""
        if stop is not None or topics:
            result: Sequence[Notification] = super().select_notifications(
                start, limit, stop, topics, inclusive_of_start=inclusive_of_start
            )
            return result
        after = 0 if start is None else start - 1 if inclusive_of_start else start
        return self._notifications(self._call_read_after, [after, limit])

    def select_partition(
        self, partition: int, gt: int = 0, limit: int = 1000
    ) -> list[tuple[int, Notification]]:
        """The partition's events after sequence `gt`, in commit order: (seq, event)."""
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row, binary=True) as curs,
        ):
            curs.execute(self._select_partition, (partition, gt, limit), prepare=True)
            return [partition_notification(row) for row in curs.fetchall()]

    def partition_heads(self) -> dict[int, int]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._partition_heads)
            return {row["partition"]: row["head"] for row in curs.fetchall()}


def open_recorder(datastore: PostgresDatastore, partitions: int) -> PostgresLedgerRecorder:
    """The recorder for `partitions`; N = 1 is the unpartitioned one, refused on a database
    created partitioned."""
    if partitions > 1:
        recorder: PostgresLedgerRecorder = PartitionedPostgresRecorder(datastore, partitions)
        recorder.create_table()
        return recorder
    with datastore.get_connection() as conn:
        qualified = f"{datastore.schema}.{HEADS_TABLE}" if datastore.schema else HEADS_TABLE
        found: Any = conn.execute("SELECT to_regclass(%s) IS NOT NULL AS present", (qualified,))
        if found.fetchone()["present"]:
            count: Any = conn.execute(
                SQL("SELECT COUNT(*) AS n FROM {0}").format(Identifier(HEADS_TABLE))
            )
            check_count(count.fetchone()["n"], 1, True)
    recorder = PostgresLedgerRecorder(datastore)
    recorder.create_table()
    return recorder
