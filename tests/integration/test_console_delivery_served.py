"""An operator's message reaches the visitor's SMS and email legs, on the real server
(`threadline serve` in a subprocess, SQLite): the provider's REST API and the SMTP relay are
real sockets on loopback. The words are recorded once (MessagePosted role operator) plus the
channel's own delivery record, never twice."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

from harness.api_server import ApiServer, free_port
from tests.integration.test_console_access import PASSWORD, create_operator
from tests.support.fake_provider import fake_provider
from tests.support.smtp_sink import smtp_sink
from threadline.app.events import register_event_types
from threadline.channels.messaging.twilio_signature import compute_signature
from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.events import MessagePosted
from threadline.ledger.store import open_ledger

TOKEN = "delivery-auth-token"
PHONE = "+15551230042"
SUPPORT = "help@threadline.test"
SAID = "Hi, this is Alice from the claims team: your January claim was paid on the 14th."


def wait_for(predicate: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def operator_posts(server: ApiServer, url: str, cid: str) -> httpx.Response:
    done = create_operator(url, "alice", PASSWORD)
    assert done.returncode == 0, done.stderr
    with httpx.Client(base_url=server.base_url, timeout=20) as alice:
        login = alice.post("/console/api/login", json={"name": "alice", "password": PASSWORD})
        assert login.status_code == 200, login.text
        assert alice.post(f"/console/api/conversations/{cid}/join").status_code == 201
        r = alice.post(f"/console/api/conversations/{cid}/messages", json={"text": SAID})
    assert r.status_code == 201, r.text
    return r


def events_of(url: str) -> tuple[str, list[RecordedEvent]]:
    register_event_types()
    ledger = open_ledger(url)
    try:
        [started] = [e for e in ledger.read_all() if e.type == "ConversationStarted"]
        return started.conversation_id, ledger.read(started.conversation_id)
    finally:
        ledger.close()


def posted(events: list[RecordedEvent], text: str) -> list[RecordedEvent]:
    return [e for e in events if isinstance(e.data, MessagePosted) and e.data.text == text]


def test_operator_message_goes_out_by_sms(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'threadline.db'}"
    with fake_provider(reply={"sid": "SM" + "a" * 32, "status": "queued"}) as api:
        env: dict[str, Any] = {
            "THREADLINE_TWILIO_AUTH_TOKEN": TOKEN,
            "THREADLINE_TWILIO_ACCOUNT_SID": "AC1",
            "THREADLINE_TWILIO_SMS_FROM": "+15559990000",
            "THREADLINE_TWILIO_API_BASE_URL": api.base_url,
        }
        with ApiServer(url, tmp_path / "server.log", **env) as server:
            endpoint = server.base_url + "/v1/channels/twilio/sms"
            form = [
                ("MessageSid", "SM" + "3" * 32),
                ("From", PHONE),
                ("To", "+15559990000"),
                ("Body", "Is my January claim paid?"),
            ]
            sig = compute_signature(TOKEN, endpoint, form)
            r = httpx.post(endpoint, data=dict(form), headers={"X-Twilio-Signature": sig})
            assert r.status_code == 200, r.text
            wait_for(lambda: len(api.requests) == 1)  # the AI's reply by SMS
            cid, _ = events_of(url)
            api.reply = {"sid": "SM" + "b" * 32, "status": "queued"}
            r = operator_posts(server, url, cid)
            assert r.json()["delivered"] == [{"channel": "sms", "error": None}]
            assert len(api.requests) == 2
            sent = dict(httpx.QueryParams(api.requests[1].body.decode()))
            assert sent["To"] == PHONE
            assert sent["Body"] == SAID
    _, events = events_of(url)
    [mine] = posted(events, SAID)
    assert mine.data.role == "operator"  # type: ignore[attr-defined]
    assert mine.actor == "operator:alice"
    updates = [e for e in events if e.type == "MessageDeliveryUpdated"]
    assert [u.data.message_event_id for u in updates] == [None, str(mine.event_id)]  # type: ignore[attr-defined]
    assert {u.leg_id for u in updates} == {mine_leg(events)}


def mine_leg(events: list[RecordedEvent]) -> str | None:
    [leg] = [e for e in events if e.type == "LegOpened"]
    return leg.leg_id


def test_operator_message_goes_out_by_email(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'threadline.db'}"
    listen = free_port()
    with smtp_sink() as (sink, relay_port):
        env: dict[str, Any] = {
            "THREADLINE_SMTP_LISTEN": f"127.0.0.1:{listen}",
            "THREADLINE_EMAIL_ADDRESSES": SUPPORT,
            "THREADLINE_SMTP_RELAY": f"127.0.0.1:{relay_port}",
            "THREADLINE_EMAIL_FROM": SUPPORT,
        }
        with ApiServer(url, tmp_path / "server.log", **env) as server:
            msg = EmailMessage()
            msg["From"] = "bob@example.com"
            msg["To"] = SUPPORT
            msg["Subject"] = "Refund"
            msg["Message-ID"] = "<delivery-1@example.com>"
            msg.set_content("Where is my refund?")
            with smtplib.SMTP("127.0.0.1", listen, timeout=10) as smtp:
                smtp.send_message(msg)
            [ai_reply] = sink.wait_for(1)
            cid, _ = events_of(url)
            r = operator_posts(server, url, cid)
            assert r.json()["delivered"] == [{"channel": "email", "error": None}]
            mails = sink.wait_for(2)
            assert len(mails) == 2
            mail = mails[1]
            assert mail["To"] == "bob@example.com"
            assert SAID in mail.get_content()
            assert mail["In-Reply-To"] == ai_reply["Message-ID"]
    _, events = events_of(url)
    [mine] = posted(events, SAID)  # recorded once: not also as role "human"
    assert mine.data.role == "operator"  # type: ignore[attr-defined]
    sent = [e for e in events if e.type == "EmailSent"]
    assert len(sent) == 2
    assert sent[1].data.message_event_id == str(mine.event_id)  # type: ignore[attr-defined]
