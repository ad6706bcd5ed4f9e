"""Consumer side, broker-free: apply events read from the topic to a metrics view, exactly
once in effect.

Kafka delivers at least once (relay retries, consumer restarts, rebalances), so the view
itself must know what it has applied. The metrics facts of each conversation carry its last
applied `position`, written in the same transaction as the fold (`threadline.projections.metrics.
apply_event` skips positions ≤ it). One partition holds all of a conversation's events in
order, so a position beyond last + 1 means an earlier event has not arrived *yet* (the
relay failed part of a batch and is republishing it): such an event is held back, not
applied, and arrives again after the missing one. Positions ≤ last are duplicates.

The view's tracking position is the highest global sequence applied: with many
partitions it is a progress indicator for `projections status`, not a resume point (the
consumer resumes from the offsets committed to Kafka after each view transaction).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eventsourcing.persistence import IntegrityError

from threadline.ledger.envelope import RecordedEvent
from threadline.projections.metrics import MetricsState
from threadline.projections.view_sql import SqlMetricsView
from threadline.projections.views import Batch, MemoryMetricsView, MetricsView

log = logging.getLogger(__name__)


@dataclass
class ConsumerStats:
    received: int = 0
    applied: int = 0
    duplicates: int = 0
    held_back: int = 0
    bad_records: int = 0
    commits: int = 0
    view_position: int = 0


def last_positions(view: MetricsView, conversation_ids: Iterable[str]) -> dict[str, int]:
    ids = sorted(set(conversation_ids))
    if isinstance(view, MemoryMetricsView):
        out: dict[str, int] = {}
        for cid in ids:
            facts = view.conversation(cid)
            out[cid] = facts.last_position if facts is not None else 0
        return out
    if isinstance(view, SqlMetricsView):
        state = MetricsState()
        with view._transaction(commit=False) as c:  # the view's own loader, read only
            view._load(c, ids, state)
        return {
            cid: state.conversations[cid].last_position if cid in state.conversations else 0
            for cid in ids
        }
    raise TypeError(f"cannot read positions from {type(view).__name__}")


class Projector:
    def __init__(self, view: MetricsView, stats: ConsumerStats | None = None) -> None:
        self.view = view
        self.stats = stats or ConsumerStats()
        # The shared position is re-read only after a conflict (another group member).
        self._position_known = False

    def apply(self, events: Sequence[RecordedEvent]) -> int:
        """Applies what is new in `events` (given in partition order) in one transaction;
        returns how many were applied. Raises if the view's transaction fails (nothing of
        the batch is then applied, and the caller must not commit offsets)."""
        self.stats.received += len(events)
        if not events:
            return 0
        last = last_positions(self.view, (e.conversation_id for e in events))
        fresh: list[RecordedEvent] = []
        for e in events:
            have = last[e.conversation_id]
            if e.position <= have:
                self.stats.duplicates += 1
            elif e.position == have + 1:
                fresh.append(e)
                last[e.conversation_id] = e.position
            else:
                self.stats.held_back += 1
                log.warning(
                    "conversation %s: position %d arrived before %d; held back until the "
                    "relay republishes the missing events",
                    e.conversation_id,
                    e.position,
                    have + 1,
                )
        if not fresh:
            return 0
        top = max(e.sequence for e in fresh)
        for attempt in range(3):
            if attempt or not self._position_known:
                self.stats.view_position = self.view.tracking().position
                self._position_known = True
            position = top if top > self.stats.view_position else None
            try:
                self.view.commit(Batch(events=fresh, position=position))
                break
            except IntegrityError:
                # Another consumer of the group moved the shared position meanwhile.
                if attempt == 2:
                    raise
        self.stats.applied += len(fresh)
        self.stats.view_position = max(self.stats.view_position, top)
        return len(fresh)
