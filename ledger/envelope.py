"""What an adapter hands to the ledger (`NewEvent`) and what the ledger hands back
(`AppendResult`, `RecordedEvent`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from threadline.ledger.events import EventData


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append. `event_id` is the idempotency key: adapters supply a stable one
    (e.g. a provider's message id mapped to a UUID) so that retries are no-ops."""

    type: str
    data: EventData | dict[str, Any]
    event_id: UUID = field(default_factory=uuid4)
    leg_id: str | None = None
    actor: str | None = None
    occurred_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AppendResult:
    conversation_id: str
    event_id: UUID
    position: int
    sequence: int
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "event_id": str(self.event_id),
            "position": self.position,
            "sequence": self.sequence,
        }


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored: payload plus the envelope that orders and chains it."""

    event_id: UUID
    conversation_id: str
    position: int
    sequence: int
    type: str
    data: EventData
    occurred_at: datetime
    recorded_at: datetime
    leg_id: str | None
    actor: str | None
    schema_version: int
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": str(self.event_id),
            "conversation_id": self.conversation_id,
            "position": self.position,
            "sequence": self.sequence,
            "type": self.type,
            "data": self.data.model_dump(mode="json"),
            "occurred_at": self.occurred_at.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
            "leg_id": self.leg_id,
            "actor": self.actor,
            "schema_version": self.schema_version,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }
