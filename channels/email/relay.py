"""Outbound mail through an SMTP relay (stdlib smtplib; blocking, so callers run it in a
worker thread). STARTTLS and login when configured; the password never reaches a log."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from threadline.channels.email.errors import DeliveryFailedError
from threadline.channels.email.settings import EmailSettings, host_port


class SmtpRelay:
    def __init__(self, settings: EmailSettings) -> None:
        if not settings.smtp_relay:
            raise ValueError("THREADLINE_SMTP_RELAY is not set")
        self._host, self._port = host_port(settings.smtp_relay)
        self._starttls = settings.smtp_starttls
        self._username = settings.smtp_username
        self._password = settings.smtp_password
        self._timeout = settings.smtp_timeout_s

    def send(self, message: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                if self._starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self._username:
                    password = self._password.get_secret_value() if self._password else ""
                    smtp.login(self._username, password)
                smtp.send_message(message)
        except smtplib.SMTPResponseException as exc:
            raw = exc.smtp_error
            detail = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            raise DeliveryFailedError(f"relay refused: {exc.smtp_code} {detail}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailedError(f"relay unavailable: {type(exc).__name__}: {exc}") from None
