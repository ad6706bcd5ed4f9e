"""PostgreSQL specifics: tamper evidence through psycopg, and the insert function's
commit-order guarantee (ids are committed in the order they are issued)."""

from __future__ import annotations

import threading

import psycopg
import pytest
from typer.testing import CliRunner

from tests.support.ledgers import message, open_configured, started
from threadline.app.cli import build
from threadline.ledger import audit
from threadline.ledger.envelope import NewEvent
from threadline.ledger.errors import IntegrityViolationError
from threadline.ledger.records import draft, seal

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url(fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("THREADLINE_DATABASE_URL", fresh_postgres_url)
    with open_configured(fresh_postgres_url) as store:
        store.append_batch("c1", [started(), message("one"), message("two"), message("three")])
    return fresh_postgres_url


@pytest.mark.parametrize(
    ("sql", "position", "reason"),
    [
        (
            "UPDATE stored_events SET state = convert_to(replace(convert_from(state, 'UTF8'), "
            '\'"text":"two"\', \'"text":"TWO"\'), \'UTF8\') '
            "WHERE originator_id = 'c1' AND originator_version = 3",
            3,
            "hash does not match",
        ),
        (
            "UPDATE stored_events SET state = state || ' '::bytea "
            "WHERE originator_id = 'c1' AND originator_version = 2",
            2,
            "canonical form",
        ),
        (
            "DELETE FROM stored_events WHERE originator_id = 'c1' AND originator_version = 2",
            2,
            "missing",
        ),
    ],
)
def test_editing_stored_bytes_fails_audit_at_that_position(
    pg_url: str, sql: str, position: int, reason: str
) -> None:
    runner = CliRunner()
    assert runner.invoke(build(), ["audit", "verify", "c1"]).exit_code == 0
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute(sql).rowcount == 1
    for args in (["audit", "verify", "c1"], ["audit", "verify", "--all"]):
        result = runner.invoke(build(), args)
        assert result.exit_code == 1
        assert f"conversation c1: position {position}: " in result.stderr
        assert reason in result.stderr


@pytest.mark.parametrize("function", ["threadline_insert_events", "threadline_insert_event"])
def test_writers_are_serialised_so_ids_commit_in_issue_order(pg_url: str, function: str) -> None:
    """A transaction holding issued notification ids blocks the next writer until it
    commits: a reader paging by id can never skip an id that commits later. Both insert
    functions (a batch's, one event's) hold the lock the other waits for."""
    with open_configured(pg_url) as store:
        head = store.read("c1")[-1]
        recorder = store.recorder
        sealed = seal(
            "c1", 5, head.hash, draft("c1", message("held")), head.recorded_at, store.codec
        )
        holder = psycopg.connect(pg_url)
        try:
            if function == "threadline_insert_events":
                holder.execute(
                    "SELECT * FROM threadline_insert_events(%s, %s, %s)",
                    (
                        [
                            recorder.construct_pg_stored_event(  # type: ignore[attr-defined]
                                "c1", 5, sealed.stored.topic, sealed.stored.state
                            )
                        ],
                        [sealed.draft.event_id],
                        [sealed.draft.digest],
                    ),
                )
            else:
                holder.execute(
                    "SELECT threadline_insert_event(%s, 5, %s, %s, %s, %s)",
                    (
                        "c1",
                        sealed.stored.topic,
                        sealed.stored.state,
                        sealed.draft.event_id,
                        sealed.draft.digest,
                    ),
                )
            done = threading.Event()
            results: list[int] = []

            def other_writer() -> None:
                results.append(store.append("c2", started()).sequence)
                done.set()

            # The other writer appends one event: the one-event function.
            thread = threading.Thread(target=other_writer)
            thread.start()
            assert not done.wait(1.0), "a second writer got past an uncommitted insert"
            held_sequence = store.max_sequence()  # the held insert is not visible yet
            holder.commit()
            assert done.wait(30)
            thread.join()
        finally:
            holder.close()
        log = store.read_all()
        assert [(e.conversation_id, e.position) for e in log][-2:] == [("c1", 5), ("c2", 1)]
        assert results[0] > log[-2].sequence > held_sequence


def test_many_processes_may_open_a_fresh_database_at_once(fresh_postgres_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def opener() -> None:
        barrier.wait(timeout=30)
        try:
            open_configured(fresh_postgres_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []


def test_open_returns_a_full_pool_with_nothing_still_connecting(pg_url: str) -> None:
    """No pool worker is still connecting once the ledger is handed out: psycopg_pool draws
    each new connection's lifetime jitter from the global `random` module in its worker
    threads, which raced Hypothesis in the caller (intermittent HypothesisDeprecationWarning
    in the PostgreSQL fuzzing). Opening lazily also grew the pool by one at first use."""
    store = open_configured(pg_url)
    try:
        stats = store.recorder.datastore.pool.get_stats()  # type: ignore[attr-defined]
        assert stats["pool_size"] == stats["pool_available"] == stats["pool_min"]
    finally:
        store.close()


def _id_rows(url: str) -> list[tuple[str, int, int, int]]:
    """(conversation, position, sequence in the id table, notification id of the record)."""
    with psycopg.connect(url) as conn:
        return [
            tuple(row)
            for row in conn.execute(
                "SELECT i.conversation_id, i.position, i.sequence, e.notification_id "
                "FROM threadline_event_ids i JOIN stored_events e "
                "ON e.originator_id = i.conversation_id AND e.originator_version = i.position "
                "ORDER BY i.sequence"
            ).fetchall()
        ]


def test_one_event_and_batch_inserts_record_the_same_id_rows(fresh_postgres_url: str) -> None:
    with open_configured(fresh_postgres_url, group_commit=False) as store:
        one = [store.append("c1", started()), store.append("c1", message("one"), 1)]
        batch = store.append_batch("c1", [message("two"), message("three")], 2)
        repeat = store.append("c1", message("one", event_id=one[1].event_id), 1)
    assert repeat.duplicate
    assert (repeat.position, repeat.sequence) == (one[1].position, one[1].sequence)
    rows = _id_rows(fresh_postgres_url)
    assert rows == [("c1", r.position, r.sequence, r.sequence) for r in [*one, *batch]]


def test_a_database_made_before_the_one_event_function_opens_and_appends(
    fresh_postgres_url: str,
) -> None:
    """The function is created (idempotently, with the tables, in one transaction) by
    every open: a cluster whose schema predates it gets it on its next open."""
    with open_configured(fresh_postgres_url) as store:
        store.append("c1", started())
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        conn.execute("DROP FUNCTION threadline_insert_event")
    for _ in range(2):
        with open_configured(fresh_postgres_url) as store:
            store.append("c1", message("after"))
    with psycopg.connect(fresh_postgres_url) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM pg_proc WHERE proname = 'threadline_insert_event'"
        ).fetchone() or (0,)
    assert count == 1
    assert [(c, p) for c, p, _, _ in _id_rows(fresh_postgres_url)] == [
        ("c1", 1),
        ("c1", 2),
        ("c1", 3),
    ]


def test_a_deleted_tail_event_appended_alone_is_named_and_its_repost_refused(
    fresh_postgres_url: str,
) -> None:
    """Issue 17's tail truncation, for events written one at a time (the one-event
    function): the id row outlives the deleted event row, so the audit names the cut and a
    re-post of the deleted event is an IntegrityViolation, not "duplicate"."""
    with open_configured(fresh_postgres_url, group_commit=False) as store:
        store.append("c1", started())
        store.append("c1", message("two"), 1)
        store.append("c1", message("three"), 2)
        gone = store.read("c1")[-1]
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        deleted = conn.execute(
            "DELETE FROM stored_events WHERE originator_id = 'c1' AND originator_version = 3"
        )
        assert deleted.rowcount == 1
    with open_configured(fresh_postgres_url) as store:
        with pytest.raises(IntegrityViolationError) as info:
            audit.verify_conversation(store, "c1")
        assert (info.value.position, "deleted" in info.value.reason) == (3, True)
        with pytest.raises(IntegrityViolationError):
            store.append("c1", NewEvent(gone.type, gone.data, gone.event_id))
        assert store.version("c1") == 2
