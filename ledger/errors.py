"""The root of every Threadline error, and the ledger's own hierarchy under it.

Each package has an errors.py whose root subclasses `ThreadlineError`, so a caller (the CLI,
a worker) can catch everything raised on purpose in one clause; the HTTP edge
(`threadline.channels.http.errors`) maps them to statuses. The root lives here because the
ledger is the innermost layer: every other package may import it.
"""

from __future__ import annotations


class ThreadlineError(Exception):
    """Root of every error Threadline raises on purpose."""


class LedgerError(ThreadlineError):
    """Root of every error the ledger raises on purpose."""


class InvalidEventError(LedgerError):
    """The event cannot be accepted as given (bad payload, unknown type, bad envelope)."""


class UnknownEventTypeError(InvalidEventError):
    """No event type of that name is registered."""


class ConversationNotFoundError(LedgerError):
    """The conversation has no events (it was never started)."""


class ConversationAlreadyStartedError(InvalidEventError):
    """ConversationStarted may only be the first event of a conversation."""


class ConcurrencyConflictError(LedgerError):
    """The caller's expected version is stale: someone else appended first."""

    def __init__(self, conversation_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"conversation {conversation_id}: expected version {expected}, actual {actual}"
        )
        self.conversation_id = conversation_id
        self.expected = expected
        self.actual = actual


class IdempotencyConflictError(LedgerError):
    """An event id was reused with a different payload or for another conversation."""


class IntegrityViolationError(LedgerError):
    """Stored data does not verify (hash chain broken or unreadable record)."""

    def __init__(self, conversation_id: str, position: int, reason: str) -> None:
        super().__init__(f"conversation {conversation_id}: position {position}: {reason}")
        self.conversation_id = conversation_id
        self.position = position
        self.reason = reason


class StoreUnavailableError(LedgerError):
    """The backing database could not be reached or configured."""


class ErasureUnavailableError(LedgerError):
    """The store keeps no encrypted personal data to shred (no master key configured)."""


class KeyRotationUnavailableError(LedgerError):
    """The master key cannot be rotated as configured (no key, or no previous key given)."""
