"""Why an email was refused; each maps to one SMTP reply in the listener."""

from __future__ import annotations

from threadline.ledger.errors import ThreadlineError


class EmailError(ThreadlineError):
    """Root of the email channel's errors."""


class MalformedMailError(EmailError):
    """Not a parseable message, or missing what threading needs (From, Message-ID)."""


class MailTooLargeError(EmailError):
    pass


class DeliveryFailedError(EmailError):
    """The relay refused or could not be reached."""
