"""Deterministic ids: the same provider message always maps to the same event, leg and
(first) conversation id, so a webhook retried by the provider is a no-op in the ledger."""

from __future__ import annotations

from uuid import UUID, uuid5

# Fixed forever: changing it would make old retries look new.
NAMESPACE = UUID("6f1c2b0e-5d3a-5b8e-9a47-2c0f1e7d4b31")


def message_event_id(provider: str, provider_message_id: str) -> UUID:
    return uuid5(NAMESPACE, f"message:{provider}:{provider_message_id}")


def status_event_id(provider: str, provider_message_id: str, status: str) -> UUID:
    return uuid5(NAMESPACE, f"status:{provider}:{provider_message_id}:{status}")


def conversation_for_message(provider: str, provider_message_id: str) -> str:
    """The id of a conversation started by this message (stable across retries)."""
    return str(uuid5(NAMESPACE, f"conversation:{provider}:{provider_message_id}"))


def leg_id(conversation_id: str, channel: str, phone: str) -> str:
    """One leg per (conversation, channel, number): an SMS thread is one leg."""
    return f"{channel}-{uuid5(NAMESPACE, f'leg:{conversation_id}:{channel}:{phone}').hex[:16]}"


def leg_event_id(conversation_id: str, leg: str, what: str) -> UUID:
    return uuid5(NAMESPACE, f"leg-event:{conversation_id}:{leg}:{what}")
