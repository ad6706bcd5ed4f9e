"""PostgreSQL backend (psycopg 3): eventsourcing's PostgresApplicationRecorder plus the
event-id table, written by one plpgsql function per append (one round trip).

Gap-free commit order. Readers of the global log page by `notification_id` and must never
pass over an id that a slower transaction commits later. eventsourcing guarantees this by
taking `LOCK TABLE stored_events IN EXCLUSIVE MODE` before inserting (see `_lock_table`);
its DB-function variant (`es_insert_events_*`, POSTGRES_ENABLE_DB_FUNCTIONS) takes no table
lock, only NOTIFY's queue lock at commit, which serialises commits but not in id order. Our
function takes the same EXCLUSIVE lock first, so ids are issued and committed in one order
(and eventsourcing's own lock-taking writers exclude ours). SELECTs are not blocked.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    ApplicationRecorder,
    Notification,
    PersistenceError,
    StoredEvent,
    Subscription,
)
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresSubscription,
)
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed, Identifier

from threadline.ledger.backends import Opened, redact
from threadline.ledger.errors import StoreUnavailableError
from threadline.ledger.recorders import EVENT_IDS_TABLE, EventIdRecord, notification_from_row
from threadline.ledger.settings import LedgerSettings

INSERT_FUNCTION = "threadline_insert_events"
# One event and its id, scalar arguments: what a lone appender (and group commit with nothing
# else queued) sends. Arrays of a composite type cost the client ~3 array dumps and the
# server the unnest/ordinality joins; see docs/performance.md (session 8).
INSERT_ONE_FUNCTION = "threadline_insert_event"
SCHEMA_LOCK = 0x7468_726C  # advisory lock key ("thrl") serialising schema creation
POOL_FILL_TIMEOUT_S = 30.0  # generous: a loaded machine may take seconds per connection
# An array parameter has no count limit; the chunk only bounds one result set's memory.
HEADS_PER_STATEMENT = 1000


def insert_events_and_ids(schema: Identifier, table: Identifier, ids: Identifier) -> Composed:
    """The WITH clause both insert functions share (this module's and
    ledger/partitions_postgres.py's), still open: `ins` inserts the batch in its order and
    returns (conversation, position, sequence); `keys` records each event id against the
    sequence it got, in the same statement. The caller closes it, with more CTEs or `) `."""
    return SQL(
        "  WITH ins AS ("
        "    INSERT INTO {schema}.{table} "
        "      (originator_id, originator_version, topic, state) "
        "    SELECT e.originator_id, e.originator_version, e.topic, e.state "
        "    FROM unnest(new_events) WITH ORDINALITY "
        "      AS e(originator_id, originator_version, topic, state, ord) "
        "    ORDER BY e.ord "
        "    RETURNING {table}.originator_id AS cid, {table}.originator_version AS pos, "
        "      {table}.notification_id AS seq"
        "  ), keys AS ("
        "    INSERT INTO {schema}.{ids} "
        "      (event_id, conversation_id, position, sequence, digest) "
        "    SELECT k.event_id, e.originator_id, ins.pos, ins.seq, k.digest "
        "    FROM unnest(new_ids, new_digests) WITH ORDINALITY AS k(event_id, digest, ord) "
        "    JOIN unnest(new_events) WITH ORDINALITY "
        "      AS e(originator_id, originator_version, topic, state, ord) "
        "      ON e.ord = k.ord "
        "    JOIN ins ON ins.cid = e.originator_id AND ins.pos = e.originator_version "
    ).format(schema=schema, table=table, ids=ids)


class PostgresLedgerRecorder(PostgresApplicationRecorder):
    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
        ids_table_name: str = EVENT_IDS_TABLE,
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.check_identifier_length(ids_table_name)
        schema = Identifier(self.datastore.schema)
        table = Identifier(self.events_table_name)
        ids = Identifier(ids_table_name)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{ids} ("
                "event_id uuid PRIMARY KEY, "
                "conversation_id text NOT NULL, "
                "position bigint NOT NULL, "
                "sequence bigint NOT NULL, "
                "digest text NOT NULL)"
            ).format(schema=schema, ids=ids)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{fn}("
                "new_events {schema}.{event_type}[], new_ids uuid[], new_digests text[]) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
                "BEGIN "
                "  SET LOCAL lock_timeout = '{lock_timeout}s'; "
                "  LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "  NOTIFY {channel}; "
                "  RETURN QUERY {inserts}  ) "
                "  SELECT ins.seq FROM ins ORDER BY ins.seq; "
                "END; $BODY$"
            ).format(
                schema=schema,
                fn=Identifier(INSERT_FUNCTION),
                inserts=insert_events_and_ids(schema, table, ids),
                event_type=Identifier(self.stored_event_type_name),
                lock_timeout=self.datastore.lock_timeout,
                table=table,
                ids=ids,
                channel=Identifier(self.channel_name),
            )
        )
        self._call_insert = SQL("SELECT * FROM {schema}.{fn}(%s, %s, %s)").format(
            schema=schema, fn=Identifier(INSERT_FUNCTION)
        )
        # The same lock, NOTIFY and two inserts as the array function, for one event.
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{fn}("
                "p_originator_id {originator_id_type}, p_position bigint, p_topic text, "
                "p_state bytea, p_event_id uuid, p_digest text) "
                "RETURNS bigint LANGUAGE plpgsql AS $BODY$ "
                "DECLARE seq bigint; "
                "BEGIN "
                "  SET LOCAL lock_timeout = '{lock_timeout}s'; "
                "  LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "  NOTIFY {channel}; "
                "  INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
                "    VALUES (p_originator_id, p_position, p_topic, p_state) "
                "    RETURNING notification_id INTO seq; "
                "  INSERT INTO {schema}.{ids} "
                "    (event_id, conversation_id, position, sequence, digest) "
                "    VALUES (p_event_id, p_originator_id, p_position, seq, p_digest); "
                "  RETURN seq; "
                "END; $BODY$"
            ).format(
                schema=schema,
                fn=Identifier(INSERT_ONE_FUNCTION),
                originator_id_type=Identifier(self.datastore.originator_id_type),
                lock_timeout=self.datastore.lock_timeout,
                table=table,
                ids=ids,
                channel=Identifier(self.channel_name),
            )
        )
        self._call_insert_one = SQL(
            "SELECT {schema}.{fn}(%s, %s::bigint, %s, %s, %s::uuid, %s) AS seq"
        ).format(schema=schema, fn=Identifier(INSERT_ONE_FUNCTION))
        self._select_conversation = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {schema}.{table} WHERE originator_id = %s"
        ).format(schema=schema, table=table)
        self._select_all = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {schema}.{table}"
        ).format(schema=schema, table=table)
        # Per id, its newest row by a backward scan of the primary key (originator_id,
        # originator_version): one index probe each, all in one statement.
        self._select_heads = SQL(
            "SELECT h.notification_id, h.originator_id, h.originator_version, h.topic, h.state "
            "FROM unnest(%s::text[]) AS c(cid) CROSS JOIN LATERAL ("
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {schema}.{table} WHERE originator_id = c.cid "
            "ORDER BY originator_version DESC LIMIT 1) AS h"
        ).format(schema=schema, table=table)
        self._lookup_ids = SQL(
            "SELECT event_id, conversation_id, position, digest, sequence "
            "FROM {schema}.{ids} WHERE event_id = ANY(%s)"
        ).format(schema=schema, ids=ids)
        self._indexed_heads = SQL(
            "SELECT conversation_id, MAX(position) AS head FROM {schema}.{ids} "
            "WHERE %(cid)s::text IS NULL OR conversation_id = %(cid)s GROUP BY conversation_id"
        ).format(schema=schema, ids=ids)

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return ListenFirstSubscription(recorder=self, gt=gt, topics=topics)

    def create_table(self) -> None:
        """Several processes may open a fresh database at once; concurrent CREATE TYPE /
        CREATE OR REPLACE FUNCTION fail ("tuple concurrently updated"), so creation is
        serialised by a session advisory lock on a separate pooled connection."""
        with self.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
            try:
                super().create_table()
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """One call of the insert function: events (of one or several conversations, as
        group commit sends them) and their ids in one transaction."""
        if not stored_events:
            return []
        records: Sequence[EventIdRecord] = kwargs.get("event_ids") or ()
        if len(stored_events) == 1 and len(records) == 1:
            return [self._insert_one(stored_events[0], records[0])]
        events = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]
        ids = [UUID(r.event_id) for r in records]
        digests = [r.digest for r in records]
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._call_insert, (events, ids, digests), prepare=True)
            return [row[INSERT_FUNCTION] for row in curs.fetchall()]

    def _insert_one(self, event: StoredEvent, record: EventIdRecord) -> int:
        # The event id goes as text (cast in the statement): no UUID object per append.
        params = (
            event.originator_id,
            event.originator_version,
            event.topic,
            event.state,
            record.event_id,
            record.digest,
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._call_insert_one, params, prepare=True)
            row = curs.fetchone()
            assert row is not None
            seq: int = row["seq"]
            return seq

    def select_conversation(
        self,
        conversation_id: str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[Notification]:
        statement = self._select_conversation
        params: list[Any] = [conversation_id]
        if gt is not None:
            statement += SQL(" AND originator_version > %s")
            params.append(gt)
        if lte is not None:
            statement += SQL(" AND originator_version <= %s")
            params.append(lte)
        statement += SQL(
            " ORDER BY originator_version DESC" if desc else " ORDER BY originator_version"
        )
        if limit is not None:
            statement += SQL(" LIMIT %s")
            params.append(limit)
        return self._notifications(statement, params)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        if stop is not None or topics:  # not used by the ledger: eventsourcing's version
            result: Sequence[Notification] = super().select_notifications(
                start, limit, stop, topics, inclusive_of_start=inclusive_of_start
            )
            return result
        statement = self._select_all
        params: list[Any] = []
        if start is not None:
            statement += SQL(
                " WHERE notification_id >= %s"
                if inclusive_of_start
                else " WHERE notification_id > %s"
            )
            params.append(start)
        statement += SQL(" ORDER BY notification_id LIMIT %s")
        params.append(limit)
        return self._notifications(statement, params)

    def _notifications(self, statement: Composed, params: list[Any]) -> list[Notification]:
        # Binary tuple rows: bytea arrives as raw bytes instead of hex text and no dict is
        # built per row, which makes a 1,000-event replay several times cheaper.
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row, binary=True) as curs,
        ):
            curs.execute(statement, params, prepare=True)
            return [notification_from_row(row) for row in curs.fetchall()]

    def select_heads(self, conversation_ids: Sequence[str]) -> dict[str, Notification]:
        """Each conversation's newest stored record (none stored: absent), a thousand
        conversations per statement (the checkpoint writer reads thousands of heads)."""
        out: dict[str, Notification] = {}
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row, binary=True) as curs,
        ):
            for start in range(0, len(conversation_ids), HEADS_PER_STATEMENT):
                chunk = list(conversation_ids[start : start + HEADS_PER_STATEMENT])
                curs.execute(self._select_heads, (chunk,), prepare=True)
                for row in curs.fetchall():
                    out[str(row[1])] = notification_from_row(row)
        return out

    def lookup_event_ids(self, event_ids: Sequence[str]) -> dict[str, EventIdRecord]:
        if not event_ids:
            return {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._lookup_ids, ([UUID(i) for i in event_ids],), prepare=True)
            found = {}
            for row in curs.fetchall():
                key = str(row["event_id"])
                found[key] = EventIdRecord(
                    key, row["conversation_id"], row["position"], row["digest"], row["sequence"]
                )
            return found

    def indexed_heads(self, conversation_id: str | None = None) -> dict[str, int]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._indexed_heads, {"cid": conversation_id})
            return {row["conversation_id"]: row["head"] for row in curs.fetchall()}


class ListenFirstSubscription(PostgresSubscription):
    """eventsourcing's subscription, reading only once its LISTEN is in effect.

    eventsourcing (9.5.6) starts the first read and the LISTEN in two threads at once: an
    event committed after that read but before the LISTEN took effect is never announced,
    and the subscriber waits forever (seen on a loaded machine in eventsourcing's own
    `test_insert_subscribe`). PostgreSQL's rule for LISTEN: listen first, then read the
    state, then rely on notifications."""

    def __init__(
        self,
        recorder: PostgresApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        self._listening = threading.Event()  # before the base class starts the reader thread
        super().__init__(recorder, gt=gt, topics=topics)

    def _listen(self) -> None:
        # eventsourcing's loop plus the signal; LISTEN takes effect at once (autocommit).
        try:
            with self._recorder.datastore.get_connection() as conn:
                conn.execute(SQL("LISTEN {0}").format(Identifier(self._recorder.channel_name)))
                self._listening.set()
                while not self._has_been_stopped and not self._thread_error:
                    for _ in conn.notifies(timeout=0.1, stop_after=1):
                        self._has_been_notified.set()
        except BaseException as exc:
            if self._thread_error is None:
                self._thread_error = exc
            self.stop()
        finally:
            self._listening.set()  # also on failure or stop: the reader must not wait forever

    def _loop_on_pull(self) -> None:
        self._listening.wait()
        super()._loop_on_pull()


def datastore_from_url(url: str, settings: LedgerSettings | None = None) -> PostgresDatastore:
    settings = settings or LedgerSettings()
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise StoreUnavailableError(f"invalid PostgreSQL URL {redact(url)!r}: {exc}") from None
    return PostgresDatastore(
        dbname=str(params.get("dbname") or ""),
        host=str(params.get("host") or "localhost"),
        port=str(params.get("port") or "5432"),
        user=str(params.get("user") or ""),
        password=str(params.get("password") or ""),
        pool_size=settings.postgres_pool_size,
        max_overflow=settings.postgres_max_overflow,
        connect_timeout=settings.postgres_connect_timeout,
        originator_id_type="text",
        enable_db_functions=True,
    )


def open_postgres(url: str, settings: LedgerSettings | None = None) -> Opened:
    datastore = datastore_from_url(url, settings)
    try:
        # Fill the pool before its first use: fails fast if the minimum cannot connect, and
        # no connection is still being opened in the background when the ledger is handed
        # out (a first use before the pool is full also grows it by one more). psycopg_pool
        # jitters each new connection's lifetime with the global `random` module from its
        # worker threads, which races the caller's own use of `random` (Hypothesis reports
        # that as randomness inside its strategies).
        datastore.pool.open(wait=True, timeout=POOL_FILL_TIMEOUT_S)
        # -- issue 18: partitioned global log (THREADLINE_LOG_PARTITIONS) --
        from threadline.ledger.partitions_postgres import open_recorder

        recorder = open_recorder(datastore, settings.log_partitions if settings else 1)
        # -- end issue 18 --
    except (PersistenceError, psycopg.Error) as exc:
        datastore.close()
        raise StoreUnavailableError(f"cannot open {redact(url)!r}: {exc}") from exc
    return recorder, datastore.close
