"""One error hierarchy for messaging; the HTTP edge maps these to statuses."""

from __future__ import annotations

from threadline.ledger.errors import ThreadlineError


class MessagingError(ThreadlineError):
    """Root of every error the messaging channels raise on purpose."""


class ProviderNotConfiguredError(MessagingError):
    """A provider's secret or account setting is missing: its webhooks are refused."""


class InvalidSignatureError(MessagingError):
    """The webhook's signature header is missing or does not match (HTTP 403)."""


class MalformedWebhookError(MessagingError):
    """The webhook body cannot be understood (HTTP 400); nothing is recorded."""


class VerificationRefusedError(MessagingError):
    """A subscription handshake presented the wrong verify token (HTTP 403)."""


class UnknownProviderMessageError(MessagingError):
    """A delivery status refers to a message Threadline never sent (HTTP 404)."""


class InvalidPhoneNumberError(MessagingError):
    """A phone number is not in E.164 form (+ and 8 to 15 digits)."""


class DeliveryFailedError(MessagingError):
    """The provider's REST API refused or could not be reached for an outbound message."""

    def __init__(self, provider: str, reason: str, status_code: int | None = None) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider = provider
        self.reason = reason
        self.status_code = status_code
