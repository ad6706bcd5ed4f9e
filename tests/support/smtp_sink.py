"""A real SMTP relay on loopback (aiosmtpd) that keeps every message it accepts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from harness.api_server import free_port


class Sink:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._cond = threading.Condition()
        self.refuse = False

    async def handle_DATA(  # noqa: N802 -- aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        if self.refuse:
            return "554 5.7.1 relay says no"
        raw = envelope.original_content or b""
        msg = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(msg, EmailMessage)
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 20.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"relay got {len(self.messages)} of {count} messages")
                self._cond.wait(left)
            return list(self.messages)


class Logins:
    """Accepts one user/password and remembers who logged in."""

    def __init__(self, user: str, password: str) -> None:
        self._expected = (user.encode(), password.encode())
        self.seen: list[str] = []

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and (data.login, data.password) == self._expected:
            self.seen.append(data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@contextmanager
def smtp_sink(logins: Logins | None = None) -> Iterator[tuple[Sink, int]]:
    """`logins`: the relay offers AUTH (over plain TCP: loopback tests only)."""
    sink = Sink()
    port = free_port()
    auth = {"authenticator": logins, "auth_require_tls": False} if logins else {}
    controller = Controller(sink, hostname="127.0.0.1", port=port, **auth)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()
