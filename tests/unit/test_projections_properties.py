"""Properties every projection must hold for random valid streams (issue 4)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.event_strategies import build, conversation, global_log
from threadline.ledger.envelope import RecordedEvent
from threadline.projections.context import build_context
from threadline.projections.identity import build_identity
from threadline.projections.metrics import build_metrics
from threadline.projections.runner import Runner
from threadline.projections.transcript import build_transcript
from threadline.projections.views import MemoryMetricsView

FOLDS: list[Any] = [build_context, build_transcript, build_identity]


@settings(max_examples=60, deadline=None)
@given(steps=conversation, cut=st.integers(0, 40))
def test_two_chunks_fold_like_one(steps: list[Any], cut: int) -> None:
    events = build(steps).events
    for fold in FOLDS:
        whole = fold(events)
        assert fold(events[cut:], start=fold(events[:cut])) == whole
        assert fold(events) == whole  # deterministic
        # Point in time: `upto` equals folding the prefix.
        assert fold(events, upto=cut) == fold(events[:cut])


@settings(max_examples=40, deadline=None)
@given(steps=conversation)
def test_context_round_trips_through_json(steps: list[Any]) -> None:
    from threadline.projections.context import AgentContext

    ctx = build_context(build(steps).events)
    assert AgentContext.model_validate_json(ctx.model_dump_json()) == ctx


class RevealingLog:
    """A global log whose events become visible a few at a time (appends happening)."""

    def __init__(self, events: list[RecordedEvent]) -> None:
        self.events = events
        self.visible = 0

    def read_all(self, after: int = 0, limit: int = 500) -> list[RecordedEvent]:
        return [e for e in self.events[: self.visible] if e.sequence > after][:limit]

    def max_sequence(self) -> int:
        return self.events[self.visible - 1].sequence if self.visible else 0


@settings(max_examples=40, deadline=None)
@given(events=global_log(), reveal=st.lists(st.integers(1, 9), min_size=1), batch=st.integers(1, 8))
def test_incremental_read_model_equals_rebuild_and_fold(
    events: list[RecordedEvent], reveal: list[int], batch: int
) -> None:
    log = RevealingLog(events)
    incremental = MemoryMetricsView()
    runner = Runner(log, incremental, batch_size=batch)
    for n in reveal:
        log.visible = min(len(events), log.visible + n)
        runner.step()
    log.visible = len(events)
    runner.catch_up()
    rebuilt = MemoryMetricsView()
    Runner(log, rebuilt, batch_size=500).catch_up()
    expected = build_metrics(events)
    assert incremental.metrics() == expected
    assert rebuilt.metrics() == expected
