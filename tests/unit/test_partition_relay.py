"""One relay loop per log partition (streaming/partition_relay.py) on a partitioned SQLite
ledger with in-memory publishers; the real broker and PostgreSQL are in
tests/integration/test_kafka_partition_relay.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from threadline.ledger.envelope import NewEvent, RecordedEvent
from threadline.ledger.partitions import partition_of
from threadline.ledger.settings import LedgerSettings
from threadline.ledger.store import Ledger, open_ledger
from threadline.streaming.checkpoint import SqliteCheckpoint
from threadline.streaming.errors import PublishFailedError
from threadline.streaming.metrics import relay_text
from threadline.streaming.partition_relay import PartitionRelay
from threadline.streaming.sealed import SealedLog

N = 4


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[RecordedEvent] = []
        self.failing = False

    def publish(self, events: Sequence[RecordedEvent]) -> None:
        if self.failing:
            raise PublishFailedError("this partition's broker is down")
        self.published.extend(events)

    def close(self) -> None:
        pass


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    settings = LedgerSettings(
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}", log_partitions=N, privacy="off"
    )
    with open_ledger(settings=settings) as store:
        for i in range(24):
            cid = f"c{i}"
            store.append(cid, NewEvent("ConversationStarted", {"channel": "chat"}))
            store.append_batch(
                cid, [NewEvent("MessagePosted", {"role": "visitor", "text": "x"}) for _ in range(2)]
            )
        yield store


def build(
    ledger: Ledger, path: Path, publishers: dict[int, FakePublisher], batch_size: int = 5
) -> PartitionRelay:
    return PartitionRelay.build(
        SealedLog(ledger),
        lambda name: SqliteCheckpoint(str(path / "ledger.db"), name),
        lambda p: publishers.setdefault(p, FakePublisher()),
        batch_size=batch_size,
        poll_interval_s=0.01,
        backoff_initial_s=0.01,
        backoff_max_s=0.02,
    )


def test_each_partition_is_published_once_in_its_order_with_its_own_checkpoint(
    ledger: Ledger, tmp_path: Path
) -> None:
    publishers: dict[int, FakePublisher] = {}
    relay = build(ledger, tmp_path, publishers)
    try:
        assert relay.catch_up() == 72
        relay.refresh_stats()
        assert (relay.stats.position, relay.stats.lag) == (72, 0)
    finally:
        relay.close()
    heads = SealedLog(ledger).partition_heads()
    assert sum(heads.values()) == 72
    assert all(heads[p] > 0 for p in range(N))
    for p, pub in publishers.items():
        assert {partition_of(e.conversation_id, N) for e in pub.published} == {p}
        assert (
            SqliteCheckpoint(str(tmp_path / "ledger.db"), f"relay.p{p}").tracking().position
            == (heads[p])
        )
    events = [e for pub in publishers.values() for e in pub.published]
    assert sorted(e.event_id.hex for e in events) == sorted(
        e.event_id.hex for e in ledger.read_all(limit=1000)
    )
    for pub in publishers.values():
        positions: dict[str, list[int]] = {}
        for e in pub.published:
            positions.setdefault(e.conversation_id, []).append(e.position)
        assert all(seen == [1, 2, 3] for seen in positions.values())


def test_a_restarted_relay_resumes_each_partition_from_its_checkpoint(
    ledger: Ledger, tmp_path: Path
) -> None:
    first: dict[int, FakePublisher] = {}
    relay = build(ledger, tmp_path, first)
    relay.step()  # one batch of 5 per partition
    relay.close()
    again: dict[int, FakePublisher] = {}
    relay = build(ledger, tmp_path, again)
    try:
        assert relay.catch_up() == 72 - 5 * N
    finally:
        relay.close()
    seen = [e.event_id for pubs in (first, again) for pub in pubs.values() for e in pub.published]
    assert len(seen) == len(set(seen)) == 72


def test_a_failing_partition_does_not_hold_the_others(ledger: Ledger, tmp_path: Path) -> None:
    publishers = {p: FakePublisher() for p in range(N)}
    publishers[2].failing = True
    relay = build(ledger, tmp_path, publishers)
    heads = SealedLog(ledger).partition_heads()
    stop = threading.Event()
    runner = threading.Thread(target=relay.run, args=(stop,))
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            each = relay.partitions
            if all(each[p].position == heads[p] for p in (0, 1, 3)) and each[2].failures >= 2:
                break
            time.sleep(0.01)
        each = relay.partitions
        assert [each[p].position for p in (0, 1, 3)] == [heads[p] for p in (0, 1, 3)]
        assert each[2].position == 0
        assert each[2].failures >= 2
        assert relay.stats.consecutive_failures >= 2
        text = relay_text(relay.stats, "relay", relay.partitions)
        assert 'threadline_relay_partition_failures_total{relay="relay",partition="2"}' in text
        publishers[2].failing = False
        deadline = time.monotonic() + 30
        while relay.partitions[2].position < heads[2] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert relay.partitions[2].position == heads[2]
    finally:
        stop.set()
        runner.join(30)
        relay.close()
    assert len(publishers[2].published) == heads[2]


def test_switching_from_the_global_relay_starts_where_it_had_got_to(
    ledger: Ledger, tmp_path: Path
) -> None:
    from threadline.streaming.relay import Relay

    before = FakePublisher()
    glob = SqliteCheckpoint(str(tmp_path / "ledger.db"), "relay")
    Relay(SealedLog(ledger), glob, before, batch_size=30).step()
    assert glob.tracking().position == 30
    publishers: dict[int, FakePublisher] = {}
    relay = build(ledger, tmp_path, publishers)
    try:
        assert relay.catch_up() == 72 - 30
    finally:
        relay.close()
    seen = [e.event_id for e in before.published]
    seen += [e.event_id for pub in publishers.values() for e in pub.published]
    assert len(seen) == len(set(seen)) == 72
    # seeding happens once: a restarted relay does not seed again
    again: dict[int, FakePublisher] = {}
    relay = build(ledger, tmp_path, again)
    try:
        assert relay.catch_up() == 0
    finally:
        relay.close()


def test_reading_a_partition_of_an_unpartitioned_log_is_refused() -> None:
    with open_ledger("memory://") as store:
        log = SealedLog(store)
        assert log.partitions == 1
        with pytest.raises(ValueError, match=r"partition 1 is not in 0\.\.0"):
            log.read_partition(1)
