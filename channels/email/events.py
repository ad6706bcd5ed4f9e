"""Event types the email channel adds to the ledger (see docs/email.md).

The visitor's words are a plain `MessagePosted` on the email leg, like every channel; these
carry what only email has: the Message-ID threading works on, the subject, attachment
metadata (never content), and what happened to Threadline's own replies.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from threadline.ledger import events as ledger_events
from threadline.ledger import privacy
from threadline.ledger.events import EventData

MessageId = Field(min_length=3, max_length=998)  # RFC 5322 line length


class EmailAttachment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="", max_length=255)
    content_type: str = Field(max_length=255)
    size: int = Field(ge=0)


class EmailReceived(EventData):
    """An inbound mail was accepted; its text is the MessagePosted with the same leg."""

    message_id: str = MessageId
    in_reply_to: str | None = Field(default=None, max_length=998)
    references: list[str] = Field(default_factory=list, max_length=100)
    sender: str = Field(min_length=3, max_length=320)
    subject: str = Field(default="", max_length=998)
    attachments: list[EmailAttachment] = Field(default_factory=list, max_length=100)


class EmailSent(EventData):
    """The relay accepted a reply Threadline composed."""

    message_id: str = MessageId
    in_reply_to: str | None = Field(default=None, max_length=998)
    to: str = Field(min_length=3, max_length=320)
    subject: str = Field(default="", max_length=998)
    # The MessagePosted this mail carries.
    message_event_id: str | None = Field(default=None, max_length=64)


class EmailDeliveryFailed(EventData):
    """The relay refused a reply or could not be reached; the reply was not sent."""

    message_id: str = MessageId
    to: str = Field(min_length=3, max_length=320)
    error: str = Field(min_length=1, max_length=500)
    message_event_id: str | None = Field(default=None, max_length=64)


def register_events() -> None:
    """Registers the types above with the ledger; idempotent."""
    for kind in (EmailReceived, EmailSent, EmailDeliveryFailed):
        ledger_events.register(kind)
    # Addresses name the data subject (erase finds the conversation by them); subjects and
    # file names are the visitor's words. Message-IDs stay clear: threading needs them
    # after an erasure, and they are generated tokens, not personal data.
    privacy.declare(
        "EmailReceived",
        ["subject", "attachments"],
        identifiers=["sender"],
        markers={"attachments": []},
    )
    privacy.declare("EmailSent", ["subject"], identifiers=["to"])
    # An SMTP error text can quote the address.
    privacy.declare("EmailDeliveryFailed", ["error"], identifiers=["to"])
