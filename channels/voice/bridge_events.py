"""Event types of a person on the voice leg (issue 16): an operator joined or left the
visitor's live WebRTC call (channels/voice/bridge.py). While they are on it the AI neither
answers nor speaks on that leg; the visitor's words are still transcribed on the stream."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from threadline.ledger import events as ledger_events
from threadline.ledger import privacy
from threadline.ledger.events import EventData


class OperatorJoinedCall(EventData):
    operator: str = Field(min_length=1, max_length=200)
    leg_id: str = Field(min_length=1, max_length=200)
    joined_at: datetime


class OperatorLeftCall(EventData):
    operator: str = Field(min_length=1, max_length=200)
    leg_id: str = Field(min_length=1, max_length=200)
    left_at: datetime
    reason: str = Field(default="handed back", max_length=200)


def register_events() -> None:
    """Registers the types above with the ledger; idempotent."""
    for kind in (OperatorJoinedCall, OperatorLeftCall):
        ledger_events.register(kind)
        # The operator's name, the leg and times: the staff's, not the visitor's data.
        privacy.declare(kind.__name__)
