"""The email leg as `threadline serve` runs it: a real server process whose lifespan binds
the SMTP listener, a real relay sink on loopback, a SQLite file."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from harness.api_server import ApiServer, free_port
from tests.support.smtp_sink import smtp_sink
from threadline.app.events import register_event_types
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


def test_chat_to_email_handoff_through_threadline_serve(tmp_path: Path) -> None:
    """Chat → "continue by email" (mailto: link with the token) → the visitor sends it → the
    same conversation, and the first reply is generated from the chat history."""
    url = f"sqlite:///{tmp_path / 'threadline.db'}"
    listen = free_port()
    with smtp_sink() as (sink, relay_port):
        env = {
            "THREADLINE_SMTP_LISTEN": f"127.0.0.1:{listen}",
            "THREADLINE_EMAIL_ADDRESSES": SUPPORT,
            "THREADLINE_SMTP_RELAY": f"127.0.0.1:{relay_port}",
            "THREADLINE_EMAIL_FROM": SUPPORT,
        }
        with ApiServer(url, tmp_path / "server.log", **env) as server:
            created = httpx.post(server.base_url + "/v1/conversations", json={})
            assert created.status_code == 201, created.text
            cid = created.json()["conversation_id"]
            visitor = {"Authorization": f"Bearer {created.json()['visitor_token']}"}
            said = httpx.post(
                f"{server.base_url}/v1/conversations/{cid}/messages",
                json={"text": "Hi, I am asking about my January claim"},
                headers=visitor,
            )
            assert said.status_code in (200, 201), said.text
            ticket = httpx.post(
                f"{server.base_url}/v1/conversations/{cid}/handoffs",
                json={"channel": "email"},
                headers=visitor,
            )
            assert ticket.status_code == 201, ticket.text
            link = urlsplit(ticket.json()["link"])
            assert link.scheme == "mailto"
            assert link.path == SUPPORT
            body = parse_qs(link.query)["body"][0]
            msg = EmailMessage()
            msg["From"] = "carol@example.com"
            msg["To"] = link.path
            msg["Subject"] = parse_qs(link.query)["subject"][0]
            msg["Message-ID"] = "<handoff-1@example.com>"
            msg.set_content(body)
            with smtplib.SMTP("127.0.0.1", listen, timeout=10) as smtp:
                smtp.send_message(msg)
            [reply] = sink.wait_for(1)
    text = reply.get_content()
    assert text.startswith("Thanks for continuing by email.")
    assert "January claim" in text
    email_events.register_events()
    ledger = open_ledger(url)
    try:
        events = ledger.read(cid)
        assert [e.type for e in events if e.type == "HandoffCompleted"] == ["HandoffCompleted"]
        assert "EmailReceived" in [e.type for e in events]
        assert len({e.conversation_id for e in ledger.read_all()}) == 1
    finally:
        ledger.close()


@pytest.fixture(autouse=True)
def _event_types() -> None:
    """Built without the bootstrap: register the event types as every entry point does."""
    register_event_types()
