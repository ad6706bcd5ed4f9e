"""SQLite specifics: URLs, durability across reopen, two writers on one file, the recorder's
own insert transaction."""

from __future__ import annotations

import itertools
from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from tests.support.ledgers import message, open_configured, started
from threadline.ledger.backends import open_recorder
from threadline.ledger.errors import ConcurrencyConflictError, StoreUnavailableError
from threadline.ledger.recorders import EventIdRecord


def test_events_survive_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with open_configured(url) as first:
        first.append_batch("c1", [started(), message("a")])
    with open_configured(url) as second:
        assert [e.position for e in second.read("c1")] == [1, 2]
        assert second.append("c1", message("b"), expected_version=2).position == 3
        assert second.read("c1")[2].prev_hash == second.read("c1")[1].hash


def test_two_ledgers_on_one_file_do_not_lose_or_fork(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    with open_configured(url) as a, open_configured(url) as b:
        a.append("c1", started())
        assert b.append("c1", message("from b")).position == 2
        # a's cached head (1) is stale: without expected version it retries on the fresh head,
        assert a.append("c1", message("from a")).position == 3
        # with a stale expected version it sees a conflict.
        b.append("c1", message("b again"))
        with pytest.raises(ConcurrencyConflictError):
            a.append("c1", message("lost"), expected_version=3)
        events = a.read("c1")
        assert [e.position for e in events] == [1, 2, 3, 4]
        assert all(cur.prev_hash == prev.hash for prev, cur in itertools.pairwise(events))


def test_default_url_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    with open_configured() as store:
        store.append("c1", started())
    assert (tmp_path / "env.db").exists()


def test_shared_memory_sqlite_url() -> None:
    with open_configured("sqlite:///:memory:") as store:
        store.append("c1", started())
        assert store.version("c1") == 1


@pytest.mark.parametrize(
    "url",
    ["mysql://x/y", "sqlite://", "sqlite:///", "nonsense", "sqlite:////no/such/dir/x.db"],
)
def test_bad_urls_are_a_clear_error(url: str) -> None:
    with pytest.raises(StoreUnavailableError):
        open_configured(url)


def test_bad_url_message_hides_the_password() -> None:
    with pytest.raises(StoreUnavailableError) as info:
        open_configured("mysql://user:s3cret@localhost/db")
    assert "s3cret" not in str(info.value)


def test_an_insert_whose_id_row_collides_leaves_nothing_and_the_connection_usable(
    tmp_path: Path,
) -> None:
    """The recorder runs its own transaction on the sqlite3 connection: a collision on the
    id row (after the event row went in) is eventsourcing's IntegrityError, rolls the event
    row back, and the next insert on the same pooled connection commits normally."""
    recorder, close = open_recorder(f"sqlite:///{tmp_path / 'l.db'}")
    try:
        first = EventIdRecord(str(uuid4()), "c1", 1, "d1")
        recorder.insert_events([StoredEvent("c1", 1, "T", b"{}")], event_ids=[first])
        reused = EventIdRecord(first.event_id, "c1", 2, "d2")
        with pytest.raises(IntegrityError):
            recorder.insert_events([StoredEvent("c1", 2, "T", b"{}")], event_ids=[reused])
        with pytest.raises(IntegrityError):  # the event row's own key
            recorder.insert_events(
                [StoredEvent("c1", 1, "T", b"{}")],
                event_ids=[EventIdRecord(str(uuid4()), "c1", 1, "d3")],
            )
        assert [n.originator_version for n in recorder.select_conversation("c1")] == [1]
        assert recorder.indexed_heads() == {"c1": 1}
        second = EventIdRecord(str(uuid4()), "c1", 2, "d4")
        (sequence,) = recorder.insert_events(
            [StoredEvent("c1", 2, "T", b"{}")], event_ids=[second]
        ) or [0]
        assert recorder.lookup_event_ids([second.event_id])[second.event_id].sequence == sequence
        assert [n.originator_version for n in recorder.select_conversation("c1")] == [1, 2]
    finally:
        close()
