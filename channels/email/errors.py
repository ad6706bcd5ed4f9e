"""Why an email was refused; each maps to one SMTP reply in the listener."""

from __future__ import annotations


class EmailError(Exception):
    """Root of the email channel's errors."""


class MalformedMail(EmailError):
    """Not a parseable message, or missing what threading needs (From, Message-ID)."""


class MailTooLarge(EmailError):
    pass


class DeliveryFailed(EmailError):
    """The relay refused or could not be reached."""
