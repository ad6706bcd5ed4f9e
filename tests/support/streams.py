"""Hand-built conversation streams for projection tests: `RecordedEvent`s without a store.

Times are deterministic (one second per position from a fixed start) so that folds over
these streams can be compared for equality and latencies have known values.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.events import EventData, parse_data

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
_sequence = itertools.count(1)


def next_sequence() -> int:
    return next(_sequence)


@dataclass
class Stream:
    """Appends validated events to an in-memory conversation, numbering them like the ledger."""

    conversation_id: str = field(default_factory=lambda: f"conv-{uuid.uuid4().hex[:8]}")
    events: list[RecordedEvent] = field(default_factory=list)
    start: datetime = T0
    sequences: Iterator[int] | None = None

    def add(
        self,
        type_: str,
        leg_id: str | None = None,
        /,
        *,
        at: float | None = None,
        data: EventData | None = None,
        **fields: Any,
    ) -> RecordedEvent:
        payload = data if data is not None else parse_data(type_, fields)
        position = len(self.events) + 1
        prev = self.events[-1].hash if self.events else "0" * 64
        when = self.start + timedelta(seconds=position if at is None else at)
        sequence = next(self.sequences) if self.sequences is not None else next_sequence()
        digest = hashlib.sha256(f"{prev}{position}{type_}".encode()).hexdigest()
        event = RecordedEvent(
            event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{self.conversation_id}/{position}"),
            conversation_id=self.conversation_id,
            position=position,
            sequence=sequence,
            type=type_,
            data=payload,
            occurred_at=when,
            recorded_at=when,
            leg_id=leg_id,
            actor=None,
            schema_version=1,
            prev_hash=prev,
            hash=digest,
        )
        self.events.append(event)
        return event

    def raw(self, type_: str, data: EventData, leg_id: str | None = None) -> RecordedEvent:
        """Appends an event whose type name the projections may not know (a future type)."""
        return self.add(type_, leg_id, data=data)
