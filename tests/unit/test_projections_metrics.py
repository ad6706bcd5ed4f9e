"""Metrics on hand-built scenarios with known answers, folded in memory and by read models."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings

from tests.support.event_strategies import global_log
from tests.support.scenarios import check_scenario, scenario
from tests.support.streams import Stream
from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.events import OpaqueData
from threadline.ledger.records import UNDECODED
from threadline.projections.metrics import METRICS_DATA_TYPES, build_metrics, percentile
from threadline.projections.runner import Runner
from threadline.projections.views import MemoryMetricsView


class ListLog:
    """A global log in a list (the runner's source), sorted by sequence."""

    def __init__(self, events: list[RecordedEvent]) -> None:
        self.events = sorted(events, key=lambda e: e.sequence)

    def read_all(self, after: int = 0, limit: int = 500) -> list[RecordedEvent]:
        return [e for e in self.events if e.sequence > after][:limit]

    def max_sequence(self) -> int:
        return self.events[-1].sequence if self.events else 0


def test_metrics_in_memory_have_the_known_answers() -> None:
    events = scenario()
    m = build_metrics(events)
    check_scenario(m)
    assert m.events == len(events)
    assert m.position == max(e.sequence for e in events)


def test_metrics_do_not_depend_on_interleaving_across_conversations() -> None:
    events = scenario()
    by_conversation = sorted(events, key=lambda e: (e.conversation_id, e.position))
    assert build_metrics(by_conversation).model_dump(exclude={"position"}) == build_metrics(
        events
    ).model_dump(exclude={"position"})


def test_redelivery_and_unknown_types_change_nothing() -> None:
    events = scenario()
    s = Stream()
    s.add("ConversationStarted", channel="sms")
    s.raw("SomethingNew", OpaqueData.model_validate({"a": 1}))
    m = build_metrics([*events, *events[:7], *s.events])
    assert m.conversations == 11
    assert m.events == len(events) + 2
    check_scenario(m.model_copy(update={"conversations": 10}))


def test_switching_back_counts_each_switch_and_reverification_definition() -> None:
    s = Stream()
    s.add("ConversationStarted", channel="chat")
    s.add("LegOpened", "c1", channel="chat")  # the first channel again: no switch
    s.add("LegOpened", "p", channel="pstn")
    s.add("LegOpened", "c2", channel="chat")
    s.add("IdentityVerified", "c2", method="otp", level=1, subject="m")
    s.add("IdentityVerified", "c2", method="kba", level=2, subject="m")  # a step-up
    s.add("VerificationFailed", "c2", method="handoff_token", reason="expired")  # the system
    m = build_metrics(s.events)
    assert (m.channel_switches, m.switched_conversations, m.reverified_after_switch) == (2, 1, 0)
    s.add("IdentityVerified", "c2", method="otp", level=1, subject="m")
    assert build_metrics(s.events).reverification_rate == 1.0


def test_empty_metrics() -> None:
    m = build_metrics([])
    assert m.conversations == 0
    assert m.reverification_rate is None
    assert m.csat_with_switch.mean is None
    assert m.latency_seconds["offer_to_accept"].p50 is None


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 11)]
    assert [percentile(values, q) for q in (0.5, 0.9, 0.95, 0.99)] == [5, 9, 10, 10]
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.99) == 7


def test_memory_view_runner_equals_the_fold() -> None:
    events = scenario()
    view = MemoryMetricsView()
    runner = Runner(ListLog(events), view, batch_size=7)
    assert runner.catch_up() == len(events)
    assert view.metrics() == build_metrics(events)
    assert runner.step() == 0
    assert runner.lag() == 0


def test_metrics_point_in_time() -> None:
    events = scenario()
    cut = events[len(events) // 2].sequence
    prefix = [e for e in events if e.sequence <= cut]
    assert build_metrics(events, upto=cut) == build_metrics(prefix)
    assert build_metrics(events, upto=cut).position == cut


def _undecoded(events: list[RecordedEvent]) -> list[RecordedEvent]:
    """The log as `Ledger.read_all(decode=METRICS_DATA_TYPES)` gives it."""
    return [
        e if e.type in METRICS_DATA_TYPES else dataclasses.replace(e, data=UNDECODED)
        for e in events
    ]


def test_the_fold_reads_no_data_of_other_types() -> None:
    events = scenario()
    assert any(e.type not in METRICS_DATA_TYPES for e in events)
    assert build_metrics(_undecoded(events)) == build_metrics(events)


@given(events=global_log())
@settings(max_examples=60, deadline=None)
def test_the_fold_reads_no_data_of_other_types_on_any_log(events: list[RecordedEvent]) -> None:
    assert build_metrics(_undecoded(events)) == build_metrics(events)
