"""Deterministic ids: the same Message-ID always maps to the same events, leg and (first)
conversation, so a redelivered mail is a no-op in the ledger."""

from __future__ import annotations

from uuid import UUID, uuid5

# Fixed forever: changing it would make old redeliveries look new.
NAMESPACE = UUID("3b0d6a52-8f41-5c9e-b7a3-91e4c2d05f18")


def message_event_id(message_id: str) -> UUID:
    """The visitor's MessagePosted for this mail."""
    return uuid5(NAMESPACE, f"message:{message_id}")


def event_id(message_id: str, what: str) -> UUID:
    return uuid5(NAMESPACE, f"{what}:{message_id}")


def conversation_for(message_id: str) -> str:
    return str(uuid5(NAMESPACE, f"conversation:{message_id}"))


def leg_id(conversation_id: str, address: str) -> str:
    """One leg per (conversation, address): an email thread is one leg."""
    return f"email-{uuid5(NAMESPACE, f'leg:{conversation_id}:{address.lower()}').hex[:16]}"


def reply_message_id(reply_event_id: UUID, domain: str) -> str:
    """The Message-ID of the mail carrying a reply: derived from the reply's event, so a
    retried send reuses it and recipients' clients de-duplicate."""
    return f"<{reply_event_id.hex}@{domain}>"
