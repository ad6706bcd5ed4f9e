"""Consumer-side dedupe: whatever Kafka redelivers, the view equals the ledger's fold."""

from __future__ import annotations

from random import Random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.streaming import seed
from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.store import open_ledger
from threadline.projections.metrics import build_metrics
from threadline.projections.views import MemoryMetricsView
from threadline.streaming.projector import Projector

LEDGER = open_ledger("memory://")
seed(LEDGER, conversations=6, per_conversation=12, chunk=4)
EVENTS = LEDGER.read_all()
SMALL = open_ledger("memory://")
seed(SMALL, conversations=3, per_conversation=8, chunk=3)
EXPECTED = build_metrics(SMALL.read_all()).model_dump(mode="json")


def by_conversation(events: list[RecordedEvent] = EVENTS) -> dict[str, list[RecordedEvent]]:
    out: dict[str, list[RecordedEvent]] = {}
    for e in events:
        out.setdefault(e.conversation_id, []).append(e)
    return out


def test_redelivered_events_are_recognised() -> None:
    view = MemoryMetricsView()
    p = Projector(view)
    assert p.apply(EVENTS[:40]) == 40
    assert p.apply(EVENTS[:60]) == 20
    assert p.stats.duplicates == 40
    assert view.metrics().model_dump(mode="json") == build_metrics(EVENTS[:60]).model_dump(
        mode="json"
    )


def test_an_event_ahead_of_its_predecessor_is_held_back_until_it_comes_again() -> None:
    conv = by_conversation()["conv-00000"]
    view = MemoryMetricsView()
    p = Projector(view)
    p.apply([conv[0], conv[2]])  # conv[1] was lost in a half-failed publish
    assert p.stats.held_back == 1
    assert view.conversation("conv-00000").last_position == 1  # type: ignore[union-attr]
    p.apply(conv[1:])  # the relay republishes from its checkpoint
    assert view.conversation("conv-00000").last_position == 12  # type: ignore[union-attr]
    assert view.totals().events == 12


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.randoms(use_true_random=False))
def test_any_at_least_once_delivery_folds_to_the_ledger(rnd: Random) -> None:
    """Per conversation (one partition): the stream in order, with any tail replayed any
    number of times at any point (relay retries, consumer restarts), partitions interleaved
    arbitrarily, applied in any batch sizes."""
    partitions: list[list[RecordedEvent]] = []
    for events in by_conversation(SMALL.read_all()).values():
        delivered: list[RecordedEvent] = []
        i = 0
        while i < len(events):
            step = rnd.randint(1, 4)
            delivered += events[i : i + step]
            i += step
            if rnd.random() < 0.4:
                delivered += events[rnd.randint(0, i) : i]  # redelivery of a seen tail
        partitions.append(delivered)
    stream: list[RecordedEvent] = []
    while any(partitions):  # interleave partitions, each keeping its own order
        k = rnd.choice([i for i, p in enumerate(partitions) if p])
        take = rnd.randint(1, 8)
        stream += partitions[k][:take]
        partitions[k] = partitions[k][take:]
    view = MemoryMetricsView()
    p = Projector(view)
    cut = rnd.randint(1, 12)
    for start in range(0, len(stream), cut):
        p.apply(stream[start : start + cut])
    assert view.metrics().model_dump(mode="json") == EXPECTED
    assert p.stats.held_back == 0
