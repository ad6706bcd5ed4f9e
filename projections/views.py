"""Read models for cross-conversation views: the port, and its in-memory implementation.

A read model stores its state *and* how far it has read the global log in one transaction
(eventsourcing's tracking-recorder idea), so a runner killed at any point resumes without
losing or double-counting an event. Tracking here is more than eventsourcing's single
"max notification id": it also keeps the *gaps* below that position — sequences not seen yet
because the transaction that took them may still commit (or has rolled back) — so an event
committed later with a lower number is still applied, once (see `threadline.projections.runner`).

Every implementation is also an eventsourcing `TrackingRecorder` (`insert_tracking`,
`max_tracking_id`), and is checked by eventsourcing's `TrackingRecorderTestCase`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.popo import POPOTrackingRecorder

from threadline.ledger.envelope import RecordedEvent
from threadline.projections.metrics import (
    ConversationFacts,
    HandoffFacts,
    HandoffMetrics,
    MetricsState,
    Totals,
    apply_event,
    state_latencies,
    summarise,
)

METRICS = "metrics"


@dataclass(frozen=True, slots=True)
class TrackingState:
    """How far a read model has read: every sequence ≤ `position` was applied, except the
    `gaps` (sequence → when it was first missed, epoch seconds)."""

    position: int = 0
    gaps: Mapping[int, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Batch:
    """What one transaction of a read model applies: `events` (gap fillers first), the new
    `position` (None when only gaps were filled), and the changes to the gap set."""

    events: Sequence[RecordedEvent]
    position: int | None = None
    filled: Sequence[int] = ()
    new_gaps: Mapping[int, float] = field(default_factory=dict)
    dropped: Sequence[int] = ()


class TrackedView(ABC):
    """A read model maintained from the global log (the port runners drive)."""

    name: str = ""

    @property
    def tracking_name(self) -> str:
        """The name its position is tracked under (eventsourcing's `application_name`)."""
        return f"projection:{self.name}"

    @abstractmethod
    def tracking(self) -> TrackingState: ...

    @abstractmethod
    def commit(self, batch: Batch) -> None:
        """Applies `batch` and records the tracking change in one transaction. Raises
        eventsourcing's `IntegrityError` (and changes nothing) if another runner already
        recorded this progress."""

    @abstractmethod
    def reset(self) -> None:
        """Forgets everything (state and tracking), for a rebuild from zero."""

    def close(self) -> None:  # noqa: B027 - most views hold nothing to release
        """Releases connections."""


class MetricsView(TrackedView):
    name = METRICS

    @abstractmethod
    def totals(self) -> Totals: ...

    @abstractmethod
    def latencies(self) -> dict[str, list[float]]: ...

    def metrics(self) -> HandoffMetrics:
        """The summary behind `GET /v1/metrics/handoff` and the Prometheus text."""
        return summarise(self.totals(), self.latencies(), self.tracking().position)


def check_batch(current: TrackingState, batch: Batch) -> None:
    """The runner's promises, re-checked inside the transaction (IntegrityError if broken)."""
    if batch.position is not None and batch.position <= current.position:
        raise IntegrityError(f"position {batch.position} is not after {current.position}")
    missing = [s for s in (*batch.filled, *batch.dropped) if s not in current.gaps]
    if missing:
        raise IntegrityError(f"sequences {missing} are not pending gaps")


class MemoryMetricsView(POPOTrackingRecorder, MetricsView):
    """Metrics in process memory (for `memory://` ledgers and tests). A commit builds the new
    state on a copy and swaps it in under the lock: all or nothing, like a transaction."""

    def __init__(self) -> None:
        super().__init__()
        self._state = MetricsState()
        self._gaps: dict[int, float] = {}

    def tracking(self) -> TrackingState:
        with self._database_lock:
            return TrackingState(self._max_tracking_ids[self.tracking_name] or 0, dict(self._gaps))

    def commit(self, batch: Batch) -> None:
        with self._database_lock:
            check_batch(self.tracking(), batch)
            state = MetricsState(
                dict(self._state.conversations),
                dict(self._state.handoffs),
                Totals.from_json(self._state.totals.to_json()),
            )
            for event in batch.events:
                apply_event(state, event)
            gaps = {s: t for s, t in self._gaps.items() if s not in set(batch.filled)}
            for s in batch.dropped:
                gaps.pop(s, None)
            gaps.update(batch.new_gaps)
            if batch.position is not None:
                tracking = Tracking(self.tracking_name, batch.position)
                self._assert_tracking_uniqueness(tracking)
                self._insert_tracking(tracking)
            self._state, self._gaps = state, gaps

    def reset(self) -> None:
        with self._database_lock:
            self._state = MetricsState()
            self._gaps = {}
            self._max_tracking_ids.pop(self.tracking_name, None)

    def totals(self) -> Totals:
        with self._database_lock:
            return Totals.from_json(self._state.totals.to_json())

    def latencies(self) -> dict[str, list[float]]:
        with self._database_lock:
            return state_latencies(self._state.handoffs.values())

    def conversation(self, conversation_id: str) -> ConversationFacts | None:
        with self._database_lock:
            return self._state.conversations.get(conversation_id)

    def handoff(self, conversation_id: str, handoff_id: str) -> HandoffFacts | None:
        with self._database_lock:
            return self._state.handoffs.get((conversation_id, handoff_id))
