"""The relay's logic with an in-memory publisher (the real broker is in
tests/integration/test_kafka_stream.py): checkpoint after acks only, gaps, backoff."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from eventsourcing.persistence import IntegrityError

from threadline.ledger.envelope import NewEvent, RecordedEvent
from threadline.ledger.store import Ledger, open_ledger
from threadline.projections.views import Batch, TrackingState
from threadline.streaming.checkpoint import Checkpoint, MemoryCheckpoint, SqliteCheckpoint
from threadline.streaming.errors import PublishFailedError
from threadline.streaming.relay import Relay


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[RecordedEvent] = []
        self.fail = 0

    def publish(self, events: Sequence[RecordedEvent]) -> None:
        if self.fail:
            self.fail -= 1
            self.published.extend(events[: len(events) // 2])  # a half-written batch
            raise PublishFailedError("broker unavailable")
        self.published.extend(events)

    def close(self) -> None:
        pass


def filled(n: int = 30) -> Ledger:
    ledger = open_ledger("memory://")
    for i in range(n // 3):
        cid = f"c{i}"
        ledger.append(cid, NewEvent("ConversationStarted", {"channel": "chat"}))
        ledger.append_batch(
            cid, [NewEvent("MessagePosted", {"role": "visitor", "text": "x"}) for _ in range(2)]
        )
    return ledger


@pytest.fixture(params=["memory", "sqlite"])
def checkpoint(request: pytest.FixtureRequest, tmp_path: Path) -> Checkpoint:
    if request.param == "memory":
        return MemoryCheckpoint()
    return SqliteCheckpoint(str(tmp_path / "ledger.db"))


def test_position_moves_only_after_the_broker_acknowledged(checkpoint: Checkpoint) -> None:
    ledger, pub = filled(), FakePublisher()
    relay = Relay(ledger, checkpoint, pub, batch_size=10)
    pub.fail = 1
    with pytest.raises(PublishFailedError):
        relay.step()
    assert checkpoint.tracking().position == 0
    assert relay.catch_up() == 30
    assert checkpoint.tracking().position == 30
    # At least once: the half-written batch is republished, so its head appears twice.
    ids = [e.event_id for e in pub.published]
    assert set(ids) == {e.event_id for e in ledger.read_all()}
    assert len(ids) == 35


def test_checkpoint_survives_a_new_relay(tmp_path: Path) -> None:
    ledger, pub = filled(), FakePublisher()
    path = str(tmp_path / "ledger.db")
    Relay(ledger, SqliteCheckpoint(path), pub, batch_size=12).step()
    again = FakePublisher()
    assert Relay(ledger, SqliteCheckpoint(path), again).catch_up() == 18
    assert [e.sequence for e in again.published] == list(range(13, 31))


def test_stale_batch_is_refused_inside_the_transaction(checkpoint: Checkpoint) -> None:
    checkpoint.record(Batch(events=[], position=10, new_gaps={4: 1.0}))
    assert checkpoint.tracking() == TrackingState(10, {4: 1.0})
    with pytest.raises(IntegrityError):
        checkpoint.record(Batch(events=[], position=10))  # another relay got there first
    with pytest.raises(IntegrityError):
        checkpoint.record(Batch(events=[], filled=[5]))  # not a pending gap
    checkpoint.record(Batch(events=[], filled=[4]))
    assert checkpoint.tracking() == TrackingState(10, {})
    checkpoint.reset()
    assert checkpoint.tracking() == TrackingState()


class HoleyLog:
    """A global log where sequence 3 commits late (a transaction still in flight)."""

    def __init__(self, events: list[RecordedEvent]) -> None:
        self.all = events
        self.hidden = {3}

    def read_all(self, after: int = 0, limit: int = 500) -> list[RecordedEvent]:
        visible = [e for e in self.all if e.sequence > after and e.sequence not in self.hidden]
        return visible[:limit]

    def max_sequence(self) -> int:
        return max(e.sequence for e in self.all if e.sequence not in self.hidden)


def test_a_late_commit_below_the_position_is_published_once() -> None:
    log, pub, cp = HoleyLog(filled(9).read_all()), FakePublisher(), MemoryCheckpoint()
    relay = Relay(log, cp, pub)
    relay.catch_up()
    assert 3 not in [e.sequence for e in pub.published]
    assert cp.tracking().gaps.keys() == {3}
    log.hidden.clear()
    relay.catch_up()
    relay.catch_up()
    assert sorted(e.sequence for e in pub.published) == list(range(1, 10))
    assert cp.tracking() == TrackingState(9, {})


def test_a_gap_that_never_fills_is_given_up_after_the_timeout() -> None:
    now = [1000.0]
    log, pub, cp = HoleyLog(filled(9).read_all()), FakePublisher(), MemoryCheckpoint()
    relay = Relay(log, cp, pub, gap_timeout_s=10, clock=lambda: now[0])
    relay.catch_up()
    now[0] += 11
    relay.catch_up()
    assert cp.tracking() == TrackingState(9, {})
    assert len(pub.published) == 8


def test_run_backs_off_while_publishing_fails_then_catches_up() -> None:
    ledger, pub, cp = filled(), FakePublisher(), MemoryCheckpoint()
    pub.fail = 4
    relay = Relay(ledger, cp, pub, backoff_initial_s=0.01, backoff_max_s=0.04)
    stop = threading.Event()
    seen_backoff: list[float] = []

    def watch() -> None:
        while not stop.is_set():
            seen_backoff.append(relay.stats.backoff_s)
            if cp.tracking().position == 30:
                stop.set()
            stop.wait(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    relay.run(stop)
    watcher.join()
    assert relay.stats.failures == 4
    assert max(seen_backoff) == 0.04  # doubled up to the cap
    assert relay.stats.consecutive_failures == 0
    assert relay.stats.last_error == "PublishFailedError: broker unavailable"


def test_events_are_published_in_global_order() -> None:
    ledger, pub = filled(), FakePublisher()
    Relay(ledger, MemoryCheckpoint(), pub, batch_size=7).catch_up()
    assert [e.sequence for e in pub.published] == list(range(1, 31))
    assert [replace(e) for e in pub.published] == ledger.read_all()
