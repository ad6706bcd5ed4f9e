"""SQLite specifics: URLs, durability across reopen, two writers on one file."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.support.ledgers import message, open_configured, started
from threadline.ledger.errors import ConcurrencyConflictError, StoreUnavailableError


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
