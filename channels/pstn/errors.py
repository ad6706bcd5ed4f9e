"""One error hierarchy for PSTN legs; the HTTP edge maps these to statuses."""

from __future__ import annotations

from threadline.ledger.errors import ThreadlineError


class PstnError(ThreadlineError):
    """Root of every error the PSTN channel raises on purpose."""


class TrunkNotConfiguredError(PstnError):
    """No SIP trunk address is configured (`THREADLINE_PSTN_TRUNK`)."""


class NoPhoneNumberError(PstnError):
    """Neither a number was given nor does the conversation have a verified one."""


class ConversationClosedError(PstnError):
    """The conversation is unknown or resolved: nothing to dial for."""


class CallFailedError(PstnError):
    """The far end rejected the call or did not answer in time."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class NoMediaPortError(PstnError):
    """No free RTP port pair in the configured range."""
