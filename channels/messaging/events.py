"""Event types the messaging channels add to the ledger (see docs/events.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from threadline.ledger import events as ledger_events
from threadline.ledger import privacy
from threadline.ledger.events import EventData


class MessageDeliveryUpdated(EventData):
    """A provider reported the delivery state of a message Threadline sent (or queued it)."""

    provider: str = Field(min_length=1, max_length=64)
    channel: Literal["sms", "whatsapp"]
    provider_message_id: str = Field(min_length=1, max_length=200)
    status: Literal["queued", "sending", "sent", "delivered", "undelivered", "failed", "read"]
    error_code: str | None = Field(default=None, max_length=64)
    # The MessagePosted this delivery is about, when Threadline sent it.
    message_event_id: str | None = Field(default=None, max_length=64)


def register_events() -> None:
    """Registers the types above with the ledger; idempotent. Importing this module does not
    register anything: the composition root (`threadline.app.events.register_event_types`,
    called by the bootstrap and the CLI) does, once at start-up."""
    ledger_events.register(MessageDeliveryUpdated)
    privacy.declare("MessageDeliveryUpdated")  # provider ids and states, no personal data
