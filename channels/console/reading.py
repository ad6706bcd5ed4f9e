"""Reading a conversation for display even when part of it does not decode.

The ledger raises `IntegrityViolationError` for a stored record it cannot read (tampered bytes,
corruption). An auditor still needs to see everything around it, so the console reads past
such a record and reports its position instead of failing the whole page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from threadline.channels.console.ports import ConversationLog
from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.errors import IntegrityViolationError

# A bound on how many unreadable records one view reports before giving up.
MAX_UNREADABLE = 50


@dataclass(slots=True)
class Readout:
    events: list[RecordedEvent] = field(default_factory=list)
    unreadable: list[tuple[int, str]] = field(default_factory=list)


def read_conversation(
    log: ConversationLog, conversation_id: str, upto: int | None = None
) -> Readout:
    out = Readout()
    after = 0
    while True:
        try:
            out.events.extend(log.read(conversation_id, after=after, upto=upto))
            return out
        except IntegrityViolationError as exc:
            if exc.conversation_id != conversation_id or len(out.unreadable) >= MAX_UNREADABLE:
                raise
            # Everything before the bad record reads; take it, note the bad one, go on after it.
            if exc.position - 1 > after:
                out.events.extend(log.read(conversation_id, after=after, upto=exc.position - 1))
            out.unreadable.append((exc.position, exc.reason))
            after = exc.position
