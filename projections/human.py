"""Who holds a conversation (the AI or a person) and whether it waits for one: a pure fold.

The chat turn path asks `holder_of` before the AI answers; the console's queue is the
conversations whose `HumanState.waiting` is true. Both are rebuilt from the events alone, so
every replica agrees on them without shared memory.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from threadline.ledger import events as ev
from threadline.ledger.envelope import RecordedEvent


@dataclass(slots=True)
class HumanState:
    conversation_id: str = ""
    tenant: str = "default"
    channel: str | None = None
    requested_at: datetime | None = None
    reason: str | None = None
    holder: str | None = None  # operator name while one holds the conversation
    holder_name: str | None = None
    joined_at: datetime | None = None
    last_operator_text: str | None = None
    last_operator_position: int = 0
    left_at: datetime | None = None
    left_by: str | None = None
    resolved: bool = False
    closed_legs: int = 0
    open_legs: int = 0
    verification_level: int = 0
    last_position: int = 0
    joins: list[tuple[str, datetime]] = field(default_factory=list)

    @property
    def waiting(self) -> bool:
        """Asked for a person, nobody has joined since, and the visitor is still here."""
        return (
            self.requested_at is not None
            and self.holder is None
            and (self.joined_at is None or self.joined_at < self.requested_at)
            and not self.resolved
            and self.open_legs > 0
        )


def fold_human(events: Iterable[RecordedEvent], state: HumanState | None = None) -> HumanState:
    s = state or HumanState()
    for e in events:
        s.conversation_id = e.conversation_id
        s.last_position = e.position
        d = e.data
        if isinstance(d, ev.ConversationStarted):
            s.tenant, s.channel = d.tenant, d.channel
        elif isinstance(d, ev.LegOpened):
            s.open_legs += 1
        elif isinstance(d, ev.LegClosed):
            s.open_legs = max(0, s.open_legs - 1)
        elif isinstance(d, ev.IdentityVerified):
            s.verification_level = max(s.verification_level, d.level)
        elif isinstance(d, ev.HumanRequested):
            if s.holder is None and not s.waiting:
                s.requested_at, s.reason = d.requested_at, d.reason
        elif isinstance(d, ev.OperatorJoined):
            s.holder, s.holder_name, s.joined_at = d.operator, d.display_name, d.joined_at
            s.joins.append((d.operator, d.joined_at))
        elif isinstance(d, ev.OperatorLeft):
            if s.holder == d.operator:
                s.holder, s.left_at, s.left_by = None, d.left_at, d.operator
                s.requested_at = None
        elif isinstance(d, ev.MessagePosted) and d.role == "operator":
            s.last_operator_text, s.last_operator_position = d.text, e.position
        elif isinstance(d, ev.ConversationResolved):
            s.resolved = True
    return s


def holder_of(events: Sequence[RecordedEvent]) -> str | None:
    """The operator holding the conversation now, or None when the AI does."""
    return fold_human(events).holder


class Log(Protocol):
    def read(
        self,
        conversation_id: str,
        after: int = 0,
        upto: int | None = None,
        limit: int | None = None,
    ) -> list[RecordedEvent]: ...

    def read_all(self, after: int = 0, limit: int = 500) -> list[RecordedEvent]: ...


_HUMAN_EVENTS = (ev.HumanRequested, ev.OperatorJoined, ev.OperatorLeft)


class QueueIndex:
    """Every conversation that ever asked for a person, caught up from the global log on each
    use (only events after the last sequence seen are read), so that any replica sees the
    queue that every other replica appended to. A conversation enters when its first
    HumanRequested/OperatorJoined appears; its earlier events are read once then."""

    def __init__(self, log: Log) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._sequence = 0
        self._states: dict[str, HumanState] = {}

    def refresh(self) -> None:
        with self._lock:
            while True:
                batch = self._log.read_all(after=self._sequence, limit=500)
                if not batch:
                    return
                for e in batch:
                    self._sequence = max(self._sequence, e.sequence)
                    state = self._states.get(e.conversation_id)
                    if state is not None:
                        if e.position > state.last_position:
                            fold_human((e,), state)
                    elif isinstance(e.data, _HUMAN_EVENTS):
                        self._states[e.conversation_id] = fold_human(
                            self._log.read(e.conversation_id, upto=e.position)
                        )

    def waiting(self, tenant: str | None = None) -> list[HumanState]:
        """Conversations waiting for a person, oldest request first."""
        self.refresh()
        with self._lock:
            found = [
                s
                for s in self._states.values()
                if s.waiting and (tenant is None or s.tenant == tenant)
            ]
        return sorted(found, key=lambda s: (s.requested_at or datetime.min, s.conversation_id))

    def states(self) -> list[HumanState]:
        self.refresh()
        with self._lock:
            return list(self._states.values())

    def position_of(self, conversation_id: str, tenant: str | None = None) -> int | None:
        """1-based place in the queue, or None when the conversation is not waiting."""
        for i, s in enumerate(self.waiting(tenant), start=1):
            if s.conversation_id == conversation_id:
                return i
        return None
