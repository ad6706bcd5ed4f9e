"""The partitioned global log (THREADLINE_LOG_PARTITIONS > 1, ledger/partitions.py) on SQLite
and PostgreSQL: per-conversation order, gap-free per-partition sequences, idempotency,
concurrency conflicts, refusal of another partition count, and (PostgreSQL) a race showing
that each partition's sequence is committed in order."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.ledgers import message, started
from threadline.ledger.audit import verify_conversation
from threadline.ledger.errors import ConcurrencyConflictError
from threadline.ledger.partitions import PartitionCountError, partition_of
from threadline.ledger.settings import LedgerSettings
from threadline.ledger.store import Ledger, open_ledger

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    found: str = request.getfixturevalue("fresh_postgres_url")
    return found


def opened(url: str, partitions: int, **kwargs: Any) -> Ledger:
    return open_ledger(
        settings=LedgerSettings(database_url=url, log_partitions=partitions, privacy="off"),
        **kwargs,
    )


@pytest.fixture(params=[2, 4], ids=["n2", "n4"])
def partitions(request: pytest.FixtureRequest) -> int:
    n: int = request.param
    return n


@pytest.fixture
def ledger(url: str, partitions: int) -> Iterator[Ledger]:
    store = opened(url, partitions)
    try:
        yield store
    finally:
        store.close()


def partition_log(ledger: Ledger, n: int) -> dict[int, list[tuple[int, str, int]]]:
    recorder: Any = ledger.recorder
    return {
        p: [(seq, e.originator_id, e.originator_version) for seq, e in recorder.select_partition(p)]
        for p in range(n)
    }


def test_partition_of_is_stable_and_spreads() -> None:
    assert partition_of("conversation-1", 4) == partition_of("conversation-1", 4)
    assert partition_of("anything", 1) == 0
    spread = {partition_of(f"c{i}", 4) for i in range(64)}
    assert spread == {0, 1, 2, 3}


def test_each_partition_is_gap_free_and_holds_its_conversations(
    ledger: Ledger, partitions: int
) -> None:
    cids = [f"conv-{i}" for i in range(12)]
    for round_ in range(3):
        for cid in cids:
            if round_ == 0:
                ledger.append(cid, started())
            else:
                ledger.append(cid, message(f"{cid} {round_}"), expected_version=round_)
    log = partition_log(ledger, partitions)
    assert sum(len(rows) for rows in log.values()) == 36
    recorder: Any = ledger.recorder
    heads = recorder.partition_heads()
    for p, rows in log.items():
        assert [seq for seq, _, _ in rows] == list(range(1, len(rows) + 1))
        assert heads[p] == len(rows)
        assert all(partition_of(cid, partitions) == p for _, cid, _ in rows)
        # a conversation's events appear in the partition in its own order
        for cid in {cid for _, cid, _ in rows}:
            assert [pos for _, c, pos in rows if c == cid] == [1, 2, 3]
    for cid in cids:
        assert [e.position for e in ledger.read(cid)] == [1, 2, 3]
        assert verify_conversation(ledger, cid) == 3


def test_duplicate_append_takes_no_partition_sequence(ledger: Ledger, partitions: int) -> None:
    ledger.append("c1", started())
    event = message("once")
    first = ledger.append("c1", event, expected_version=1)
    again = ledger.append("c1", event, expected_version=1)
    assert again.duplicate
    assert again.position == first.position
    assert sum(len(r) for r in partition_log(ledger, partitions).values()) == 2


def test_stale_expectation_conflicts_and_appends_nothing(ledger: Ledger, partitions: int) -> None:
    ledger.append("c1", started())
    ledger.append("c1", message("a"), expected_version=1)
    with pytest.raises(ConcurrencyConflictError):
        ledger.append("c1", message("b"), expected_version=1)
    assert sum(len(r) for r in partition_log(ledger, partitions).values()) == 2


def test_batches_spanning_partitions_under_group_commit(url: str) -> None:
    """Group commit sends several conversations (of several partitions) in one insert."""
    with opened(url, 4, group_commit=True) as store:
        cids = [f"g{i}" for i in range(16)]

        def work(cid: str) -> None:
            store.append(cid, started())
            for i in range(5):
                store.append(cid, message(str(i)), expected_version=i + 1)

        threads = [threading.Thread(target=work, args=(c,)) for c in cids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        log = partition_log(store, 4)
        assert sum(len(r) for r in log.values()) == 16 * 6
        for rows in log.values():
            assert [seq for seq, _, _ in rows] == list(range(1, len(rows) + 1))


def test_another_partition_count_is_refused(url: str) -> None:
    with opened(url, 2) as store:
        store.append("c1", started())
    for n in (1, 4):
        with pytest.raises(PartitionCountError, match="created with 2 partitions"):
            opened(url, n)
    with opened(url, 2) as store:  # the same count reopens
        assert store.version("c1") == 1


def test_partitioning_an_unpartitioned_log_with_events_is_refused(url: str) -> None:
    with opened(url, 1) as store:
        store.append("c1", started())
    with pytest.raises(PartitionCountError, match="1 partition"):
        opened(url, 4)
    with opened(url, 1) as store:
        assert store.version("c1") == 1


@pytest.mark.postgres
def test_postgres_partition_sequences_are_committed_in_order(fresh_postgres_url: str) -> None:
    """16 writers over 4 partitions while a follower pages each partition by `seq > last`
    and the global log by `sequence > last`: if a number could commit after a higher one
    became visible, the follower would pass over it and miss the event. Every event must
    be seen exactly once, in order."""
    n, writers, per_writer = 4, 16, 25
    with opened(fresh_postgres_url, n, group_commit=False) as store:
        recorder: Any = store.recorder
        seen: dict[int, list[int]] = {p: [] for p in range(n)}
        global_seen: list[int] = []
        done = threading.Event()

        def follow() -> None:
            last = dict.fromkeys(range(n), 0)
            while True:
                finished = done.is_set()
                for p in range(n):
                    # page to the end: the last pass (after `done`) must drain each partition
                    while page := recorder.select_partition(p, gt=last[p], limit=50):
                        for seq, _ in page:
                            seen[p].append(seq)
                            last[p] = seq
                while batch := store.read_all_ids(
                    after=global_seen[-1] if global_seen else 0, limit=50
                ):
                    global_seen.extend(seq for seq, _ in batch)
                if finished:
                    return

        def write(w: int) -> None:
            cid = f"race-{w}"
            store.append(cid, started())
            for i in range(per_writer):
                store.append(cid, message(str(i)), expected_version=i + 1)

        follower = threading.Thread(target=follow)
        follower.start()
        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done.set()
        follower.join()
        heads = recorder.partition_heads()
        assert sum(heads.values()) == writers * (per_writer + 1)
        for p in range(n):
            assert seen[p] == list(range(1, heads[p] + 1))
        # the global log, paged by `sequence > last`, misses nothing either
        assert len(global_seen) == writers * (per_writer + 1)
        assert global_seen == sorted(set(global_seen))
