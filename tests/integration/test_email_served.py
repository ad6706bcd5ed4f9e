"""The email leg as `threadline serve` runs it: a real server process whose lifespan binds
the SMTP listener, a real relay sink on loopback, a SQLite file."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

from tests.support.api_server import ApiServer, free_port
from tests.support.smtp_sink import smtp_sink
from threadline.channels.email import events as email_events
from threadline.ledger.events import MessagePosted
from threadline.ledger.store import open_ledger

SUPPORT = "help@threadline.test"


def test_mail_in_and_reply_out_through_threadline_serve(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'threadline.db'}"
    listen = free_port()
    with smtp_sink() as (sink, relay_port):
        env = {
            "THREADLINE_SMTP_LISTEN": f"127.0.0.1:{listen}",
            "THREADLINE_EMAIL_ADDRESSES": SUPPORT,
            "THREADLINE_SMTP_RELAY": f"127.0.0.1:{relay_port}",
            "THREADLINE_EMAIL_FROM": SUPPORT,
        }
        with ApiServer(url, tmp_path / "server.log", **env):
            msg = EmailMessage()
            msg["From"] = "bob@example.com"
            msg["To"] = SUPPORT
            msg["Subject"] = "Refund"
            msg["Message-ID"] = "<served-1@example.com>"
            msg.set_content("Where is my refund?\n\n-- \nBob")
            for _ in range(2):  # redelivered: still one message
                with smtplib.SMTP("127.0.0.1", listen, timeout=10) as smtp:
                    smtp.send_message(msg)
            [reply] = sink.wait_for(1)
            assert reply["In-Reply-To"] == "<served-1@example.com>"
    email_events.register_events()
    ledger = open_ledger(url)
    try:
        events = ledger.read_all()
        visitor = [
            e.data.text
            for e in events
            if isinstance(e.data, MessagePosted) and e.data.role == "visitor"
        ]
        assert visitor == ["Where is my refund?"]
        assert [e.type for e in events if e.type.startswith("Email")] == [
            "EmailReceived",
            "EmailSent",
        ]
        assert len(sink.messages) == 1
    finally:
        ledger.close()
