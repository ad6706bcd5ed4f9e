"""Metrics read models on every backend: the tracking contract, rebuild = incremental = fold,
gaps in the global sequence, and failures between applying and recording the position."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eventsourcing.persistence import IntegrityError, TrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests.persistence import TrackingRecorderTestCase
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.event_strategies import global_log
from tests.support.streams import Stream
from threadline.ledger.envelope import RecordedEvent
from threadline.projections.metrics import build_metrics
from threadline.projections.runner import Runner
from threadline.projections.view_sqlite import SQLiteMetricsView, open_sqlite_view
from threadline.projections.views import Batch, MemoryMetricsView, MetricsView


class SQLiteViewTrackingContract(TrackingRecorderTestCase):
    """eventsourcing's own contract for tracking recorders, run against our SQLite view."""

    def create_recorder(self) -> TrackingRecorder:
        # One connection to a private in-memory database.
        view = SQLiteMetricsView(SQLiteDatastore(db_name=":memory:"))
        view.create_table()
        return view


class MemoryViewTrackingContract(TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        return MemoryMetricsView()


@pytest.fixture
def _postgres_url_on_class(request: pytest.FixtureRequest, fresh_postgres_url: str) -> None:
    request.cls.url = fresh_postgres_url


@pytest.mark.postgres
@pytest.mark.usefixtures("_postgres_url_on_class")
class PostgresViewTrackingContract(TrackingRecorderTestCase):
    url: str

    def create_recorder(self) -> TrackingRecorder:
        from threadline.projections.view_postgres import open_postgres_view

        view = open_postgres_view(self.url)
        self.addCleanup(view.close)
        return view


del TrackingRecorderTestCase  # keep pytest from collecting the abstract base


def open_view(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> MetricsView:
    if backend == "memory":
        return MemoryMetricsView()
    if backend == "sqlite":
        return open_sqlite_view(str(tmp_path / "v.db"))
    from threadline.projections.view_postgres import open_postgres_view

    return open_postgres_view(request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def view(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetricsView]:
    v = open_view(request.param, tmp_path, request)
    yield v
    v.close()


class Log:
    """A global log in which some committed numbers are hidden (in flight) or never appear."""

    def __init__(self, events: list[RecordedEvent]) -> None:
        self.events = sorted(events, key=lambda e: e.sequence)
        self.hidden: set[int] = set()

    def read_all(self, after: int = 0, limit: int = 500) -> list[RecordedEvent]:
        out = [e for e in self.events if e.sequence > after and e.sequence not in self.hidden]
        return out[:limit]

    def max_sequence(self) -> int:
        return max((e.sequence for e in self.events if e.sequence not in self.hidden), default=0)


def two_conversations() -> list[RecordedEvent]:
    seq = iter(range(1, 1000))
    a, b = Stream("conv-a", sequences=seq), Stream("conv-b", sequences=seq)
    a.add("ConversationStarted", channel="chat")  # 1
    b.add("ConversationStarted", channel="chat")  # 2
    a.add("HandoffOffered", handoff_id="h", at=10)  # 3
    b.add("CSATRecorded", score=4)  # 4
    a.add("HandoffAccepted", handoff_id="h", at=13)  # 5
    a.add("LegOpened", "v", channel="webrtc", at=14)  # 6
    a.add("HandoffCompleted", "v", handoff_id="h", leg_id="v", first_utterance="Hi", at=15)  # 7
    a.add("CSATRecorded", score=5)  # 8
    return a.events + b.events


def test_rebuild_equals_incremental_equals_fold(view: MetricsView) -> None:
    events = two_conversations()
    log = Log(events)
    runner = Runner(log, view, batch_size=3)
    assert runner.catch_up() == len(events)
    assert view.metrics() == build_metrics(events)
    assert view.metrics().funnel.completed == 1
    view.reset()
    assert view.tracking().position == 0
    assert view.metrics().conversations == 0
    assert Runner(log, view).catch_up() == len(events)
    assert view.metrics() == build_metrics(events)


def test_late_commit_with_a_lower_number_is_applied_once(view: MetricsView) -> None:
    events = two_conversations()
    log = Log(events)
    log.hidden = {4}  # b's CSAT took number 4 but commits after 5..8 are visible
    clock = [1000.0]
    runner = Runner(log, view, gap_timeout_s=30, clock=lambda: clock[0])
    assert runner.catch_up() == 7
    assert view.tracking().position == 8
    assert dict(view.tracking().gaps) == {4: 1000.0}
    assert view.metrics().csat_without_switch.count == 0
    log.hidden = set()
    clock[0] += 5
    assert runner.step() == 1
    assert view.tracking().gaps == {}
    assert view.metrics() == build_metrics(events)
    assert runner.step() == 0  # and never again
    assert view.metrics().csat_without_switch.count == 1


def test_rolled_back_number_is_given_up_after_the_timeout(view: MetricsView) -> None:
    events = [e for e in two_conversations() if e.sequence != 4]  # 4 rolled back
    clock = [0.0]
    runner = Runner(Log(events), view, gap_timeout_s=10, clock=lambda: clock[0])
    runner.catch_up()
    assert set(view.tracking().gaps) == {4}
    clock[0] = 5.0
    runner.step()
    assert set(view.tracking().gaps) == {4}
    clock[0] = 11.0
    runner.step()
    assert view.tracking().gaps == {}
    assert view.metrics() == build_metrics(events)


def test_gap_bookkeeping_is_bounded(view: MetricsView) -> None:
    s = Stream("conv-x", sequences=iter([1, 5000]))
    s.add("ConversationStarted", channel="chat")
    s.add("CSATRecorded", score=3)
    Runner(Log(s.events), view, max_gaps=10).catch_up()
    assert sorted(view.tracking().gaps) == list(range(4990, 5000))
    assert view.metrics().conversations == 1


def test_failure_between_applying_and_recording_the_position_changes_nothing(
    view: MetricsView, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = two_conversations()
    log = Log(events)
    runner = Runner(log, view, batch_size=4)
    assert runner.step() == 4
    before = view.metrics()

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("killed before the position was recorded")

    # The view rows of the next batch are written, then recording the position fails.
    monkeypatch.setattr(view, "_insert_tracking", crash)
    with pytest.raises(RuntimeError):
        runner.step()
    assert view.metrics() == before
    assert view.tracking().position == 4
    monkeypatch.undo()
    assert runner.catch_up() == 4
    assert view.metrics() == build_metrics(events)  # nothing counted twice


def test_a_stale_runner_cannot_apply_twice(view: MetricsView) -> None:
    events = two_conversations()
    view.commit(Batch(events=events[:2], position=events[1].sequence))
    with pytest.raises(IntegrityError):
        view.commit(Batch(events=events[:2], position=events[1].sequence))
    with pytest.raises(IntegrityError):
        view.commit(Batch(events=events[:1], filled=[1]))  # 1 is no pending gap
    assert view.metrics().events == 2


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=global_log(max_conversations=4), cuts=st.lists(st.integers(1, 6), min_size=1))
def test_sqlite_incremental_equals_fold(
    tmp_path_factory: pytest.TempPathFactory, events: list[RecordedEvent], cuts: list[int]
) -> None:
    view = open_sqlite_view(str(tmp_path_factory.mktemp("h") / "v.db"))
    try:
        log = Log(events)
        visible = 0
        for n in cuts:  # appends arrive while the runner works
            visible = min(len(events), visible + n)
            log.hidden = {e.sequence for e in events[visible:]}
            Runner(log, view, batch_size=3).step()
        log.hidden = set()
        Runner(log, view, batch_size=3).catch_up()
        assert view.metrics() == build_metrics(events)
    finally:
        view.close()
