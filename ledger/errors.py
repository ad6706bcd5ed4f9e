"""One error hierarchy for the ledger; the API edge maps these to HTTP statuses."""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every error the ledger raises on purpose."""


class InvalidEvent(LedgerError):
    """The event cannot be accepted as given (bad payload, unknown type, bad envelope)."""


class UnknownEventType(InvalidEvent):
    """No event type of that name is registered."""


class ConversationNotFound(LedgerError):
    """The conversation has no events (it was never started)."""


class ConversationAlreadyStarted(InvalidEvent):
    """ConversationStarted may only be the first event of a conversation."""


class ConcurrencyConflict(LedgerError):
    """The caller's expected version is stale: someone else appended first."""

    def __init__(self, conversation_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"conversation {conversation_id}: expected version {expected}, actual {actual}"
        )
        self.conversation_id = conversation_id
        self.expected = expected
        self.actual = actual


class IdempotencyConflict(LedgerError):
    """An event id was reused with a different payload or for another conversation."""


class IntegrityViolation(LedgerError):
    """Stored data does not verify (hash chain broken or unreadable record)."""

    def __init__(self, conversation_id: str, position: int, reason: str) -> None:
        super().__init__(f"conversation {conversation_id}: position {position}: {reason}")
        self.conversation_id = conversation_id
        self.position = position
        self.reason = reason


class StoreUnavailable(LedgerError):
    """The backing database could not be reached or configured."""


class ErasureUnavailable(LedgerError):
    """The store keeps no encrypted personal data to shred (no master key configured)."""


class KeyRotationUnavailable(LedgerError):
    """The master key cannot be rotated as configured (no key, or no previous key given)."""
