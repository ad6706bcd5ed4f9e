"""One error hierarchy for the handoff package; the API edge maps these to HTTP statuses."""

from __future__ import annotations

from threadline.ledger.errors import ThreadlineError


class HandoffError(ThreadlineError):
    """Root of every error the handoff package raises on purpose."""


class ConfigurationError(HandoffError):
    """A setting is missing or unusable (e.g. a secret that is too short)."""


class TokenError(HandoffError):
    """A signed token could not be accepted. `reason` is a short machine-readable word
    (malformed, forged, expired, wrong_purpose, ...) that is safe to record and to show."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or reason)
        self.reason = reason


class TokenRejectedError(TokenError):
    """A handoff token was refused; the rejection has been recorded as VerificationFailed
    on the conversation it addressed (when there was one to record it on)."""


class UnknownConversationError(HandoffError):
    """The conversation has never been started."""


class HandoffNotAllowedError(HandoffError):
    """The handoff cannot be requested now (e.g. the conversation is closed or unknown)."""


class AgentError(HandoffError):
    """The agent could not produce a reply (provider failure, bad provider output)."""


class ToolError(HandoffError):
    """A tool call failed; the message is shown to the agent and recorded in ToolResulted."""
