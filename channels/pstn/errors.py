"""One error hierarchy for PSTN legs; the HTTP edge maps these to statuses."""

from __future__ import annotations


class PstnError(Exception):
    """Root of every error the PSTN channel raises on purpose."""


class TrunkNotConfigured(PstnError):
    """No SIP trunk address is configured (`THREADLINE_PSTN_TRUNK`)."""


class NoPhoneNumber(PstnError):
    """Neither a number was given nor does the conversation have a verified one."""


class ConversationClosed(PstnError):
    """The conversation is unknown or resolved: nothing to dial for."""


class CallFailed(PstnError):
    """The far end rejected the call or did not answer in time."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class NoMediaPort(PstnError):
    """No free RTP port pair in the configured range."""
