"""Email legs over real SMTP on loopback: smtplib sends to Threadline's aiosmtpd listener,
replies go out through smtplib to an aiosmtpd relay sink; a SQLite ledger; the real chat
agent (offline model) answers."""

from __future__ import annotations

import asyncio
import smtplib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.support.smtp_sink import Logins, Sink, smtp_sink
from tests.support.tools import seeded_tools
from threadline.agent.chat import ChatAgent
from threadline.agent.factory import build_agent
from threadline.app.events import register_event_types
from threadline.channels.email.channel import EmailChannel
from threadline.channels.email.directory import EmailDirectory
from threadline.channels.email.errors import DeliveryFailedError
from threadline.channels.email.events import EmailReceived
from threadline.channels.email.relay import SmtpRelay
from threadline.channels.email.service import EmailService
from threadline.channels.email.settings import EmailSettings
from threadline.handoff import tokens
from threadline.handoff.service import HandoffService
from threadline.handoff.signing import Signer
from threadline.ledger.envelope import NewEvent, RecordedEvent
from threadline.ledger.events import ConversationStarted, LegOpened, MessagePosted
from threadline.ledger.store import Ledger, open_ledger
from threadline.projections.metrics import build_metrics
from threadline.projections.transcript import build_transcript

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
SUPPORT = "support@threadline.test"
VISITOR = "ann@example.com"
SIGNER = Signer(b"e" * 32, tokens.PURPOSE)
MAX_BYTES = 64 * 1024


@dataclass
class Env:
    ledger: Ledger
    sink: Sink
    port: int

    def send(self, msg: EmailMessage) -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as smtp:
            smtp.send_message(msg)

    def send_raw(self, raw: bytes) -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as smtp:
            smtp.sendmail(VISITOR, [SUPPORT], raw)

    def events(self) -> list[RecordedEvent]:
        return self.ledger.read_all(limit=10_000)

    def replies(self, count: int) -> list[EmailMessage]:
        """The first `count` replies, once the relay has them and their outcome is recorded."""
        messages = self.sink.wait_for(count)
        self.outcomes(count)
        return messages

    def outcomes(self, count: int) -> list[RecordedEvent]:
        for _ in range(400):
            done = [e for e in self.events() if e.type in ("EmailSent", "EmailDeliveryFailed")]
            if len(done) >= count:
                return done
            threading.Event().wait(0.05)
        raise AssertionError(f"{count} delivery outcomes not recorded")


def mail(
    text: str,
    message_id: str,
    *,
    subject: str = "January claim",
    reply_to: EmailMessage | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Ann Visitor <{VISITOR}>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject if reply_to is None else f"Re: {reply_to['Subject']}"
    msg["Message-ID"] = message_id
    if reply_to is not None:
        msg["In-Reply-To"] = reply_to["Message-ID"]
        refs = str(reply_to.get("References", ""))
        msg["References"] = f"{refs} {reply_to['Message-ID']}".strip()
    msg.set_content(text)
    return msg


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    with seeded_tools(NOW) as tools, smtp_sink() as (sink, relay_port):
        settings = EmailSettings(
            smtp_listen="127.0.0.1:0",
            email_addresses=SUPPORT,
            smtp_relay=f"127.0.0.1:{relay_port}",
            email_from=SUPPORT,
            email_max_bytes=MAX_BYTES,
        )
        service = EmailService(
            ledger,
            EmailDirectory(ledger),
            from_address=SUPPORT,
            relay=SmtpRelay(settings),
            turns=ChatAgent(ledger, build_agent(tools, clock=lambda: NOW)),
            handoffs=HandoffService(ledger, signer=SIGNER),
        )
        channel = EmailChannel(settings, service)
        asyncio.run_coroutine_threadsafe(channel.start(), loop).result(10)
        assert channel.port is not None
        try:
            yield Env(ledger, sink, channel.port)
        finally:
            asyncio.run_coroutine_threadsafe(channel.stop(), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
            runner.join(10)
            loop.close()
            ledger.close()


def visitor_texts(events: list[RecordedEvent]) -> list[str]:
    return [
        e.data.text
        for e in events
        if isinstance(e.data, MessagePosted) and e.data.role == "visitor"
    ]


def test_new_mail_starts_a_conversation_and_gets_a_threaded_reply(env: Env) -> None:
    first = mail("Hi, is my January claim paid?", "<m1@example.com>")
    first.add_attachment(b"%PDF-1.4 " * 10, maintype="application", subtype="pdf", filename="c.pdf")
    env.send(first)
    [reply] = env.replies(1)
    assert reply["To"] == VISITOR
    assert reply["From"] == SUPPORT
    assert reply["In-Reply-To"] == "<m1@example.com>"
    assert "<m1@example.com>" in reply["References"]
    assert reply["Subject"] == "Re: January claim"
    events = env.events()
    started = [e for e in events if isinstance(e.data, ConversationStarted)]
    assert len(started) == 1
    assert started[0].data.channel == "email"
    cid = started[0].conversation_id
    legs = [e for e in events if isinstance(e.data, LegOpened)]
    assert [e.data.channel for e in legs] == ["email"]
    assert visitor_texts(events) == ["Hi, is my January claim paid?"]
    [received] = [e for e in events if isinstance(e.data, EmailReceived)]
    assert received.data.subject == "January claim"
    assert [(a.name, a.content_type, a.size) for a in received.data.attachments] == [
        ("c.pdf", "application/pdf", 90)
    ]
    sent = [e for e in events if e.type == "EmailSent"]
    assert [e.data.message_id for e in sent] == [reply["Message-ID"]]  # type: ignore[attr-defined]
    agent = [e for e in events if isinstance(e.data, MessagePosted) and e.data.role == "agent"]
    assert agent
    assert agent[-1].data.text in reply.get_content()

    # The visitor answers the reply, quoting it: same conversation, same leg, own words only.
    quoted = "\n".join(f"> {line}" for line in reply.get_content().splitlines())
    answer = mail(
        f"Thanks! And the February one?\n\nOn Fri, 20 Nov 2026 Support wrote:\n{quoted}\n",
        "<m2@example.com>",
        reply_to=reply,
    )
    env.send(answer)
    second = env.replies(2)[1]
    assert second["In-Reply-To"] == "<m2@example.com>"
    assert reply["Message-ID"] in second["References"]
    events = env.events()
    assert {e.conversation_id for e in events} == {cid}
    assert visitor_texts(events) == [
        "Hi, is my January claim paid?",
        "Thanks! And the February one?",
    ]
    assert len({e.leg_id for e in events if e.type == "EmailReceived"}) == 1
    turns = build_transcript(env.ledger.read(cid)).turns
    assert {t.channel for t in turns} == {"email"}


def test_duplicate_delivery_records_one_message(env: Env) -> None:
    first = mail("Where is my refund?", "<dup@example.com>")
    env.send(first)
    env.replies(1)
    before = env.events()
    env.send(first)  # the sender's MTA delivers it again
    after = env.events()
    assert [e.event_id for e in after] == [e.event_id for e in before]
    assert visitor_texts(after) == ["Where is my refund?"]
    assert len(env.sink.messages) == 1


def test_new_mail_from_a_threaded_address_continues_it(env: Env) -> None:
    env.send(mail("Question one", "<a1@example.com>"))
    env.replies(1)
    env.send(mail("A new subject, same person", "<a2@example.com>", subject="Other"))
    env.replies(2)
    assert len({e.conversation_id for e in env.events()}) == 1
    assert not [e for e in env.events() if e.type == "IdentityVerified"]


def test_malformed_and_oversize_mail_are_refused_and_nothing_is_appended(env: Env) -> None:
    with pytest.raises(smtplib.SMTPDataError) as no_id:
        env.send_raw(b"From: ann@example.com\r\nSubject: no id\r\n\r\nhello\r\n")
    assert no_id.value.smtp_code == 550
    with pytest.raises(smtplib.SMTPDataError) as no_from:
        env.send_raw(b"Message-ID: <x@example.com>\r\nSubject: hi\r\n\r\nhello\r\n")
    assert no_from.value.smtp_code == 550
    big = mail(("x" * 70 + "\n") * (MAX_BYTES // 70 + 10), "<big@example.com>")
    with pytest.raises((smtplib.SMTPDataError, smtplib.SMTPSenderRefused)) as too_big:
        env.send(big)
    assert too_big.value.smtp_code == 552
    # A client that does not announce SIZE: refused after DATA.
    with smtplib.SMTP("127.0.0.1", env.port, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.mail(VISITOR)[0] == 250
        assert smtp.rcpt(SUPPORT)[0] == 250
        code, _ = smtp.data(big.as_bytes(policy=policy.SMTP))
    assert code == 552
    with (
        pytest.raises(smtplib.SMTPRecipientsRefused),
        smtplib.SMTP("127.0.0.1", env.port, timeout=10) as smtp,
    ):
        smtp.sendmail(VISITOR, ["someone-else@threadline.test"], bytes(mail("hi", "<o@x>")))
    assert env.events() == []
    assert env.sink.messages == []


def test_relay_refusal_is_recorded(env: Env) -> None:
    env.sink.refuse = True
    env.send(mail("Hello?", "<r1@example.com>"))
    failed = env.outcomes(1)
    assert [e.type for e in failed] == ["EmailDeliveryFailed"]
    assert "554" in failed[0].data.error  # type: ignore[attr-defined]
    assert not [e for e in env.events() if e.type == "EmailSent"]


def test_chat_to_email_handoff_keeps_the_context(env: Env) -> None:
    cid = "chat-to-email"
    env.ledger.append_batch(
        cid,
        [
            NewEvent("ConversationStarted", ConversationStarted(channel="chat")),
            NewEvent("LegOpened", LegOpened(channel="chat"), leg_id="chat-1"),
            NewEvent(
                "MessagePosted",
                MessagePosted(role="visitor", text="I am asking about my January claim"),
                leg_id="chat-1",
            ),
        ],
    )
    ticket = HandoffService(env.ledger, signer=SIGNER).request_handoff(cid, "email")
    env.send(mail(f"Continuing here {ticket.token}", "<h1@example.com>"))
    [reply] = env.replies(1)
    text = reply.get_content()
    assert text.startswith("Thanks for continuing by email.")
    assert "claim" in text
    assert "call" not in text.lower()
    events = env.ledger.read(cid)
    assert [e.type for e in events if e.type == "HandoffCompleted"] == ["HandoffCompleted"]
    assert visitor_texts(events)[-1] == "Continuing here"
    legs = [e.data.channel for e in events if isinstance(e.data, LegOpened)]
    assert legs == ["chat", "email"]
    metrics = build_metrics(events)
    assert metrics.switched_conversations == 1
    assert metrics.channel_switches == 1
    transcript = build_transcript(events).turns
    assert [t.channel for t in transcript][:1] == ["chat"]
    assert transcript[-1].channel == "email"
    # Its reply threads on the same conversation.
    env.send(mail("Thanks", "<h2@example.com>", reply_to=reply))
    env.replies(2)
    assert visitor_texts(env.ledger.read(cid))[-1] == "Thanks"


def test_relay_login_when_configured() -> None:
    logins = Logins("relay-user", "relay-pass")
    with smtp_sink(logins) as (sink, port):
        settings = EmailSettings(
            smtp_relay=f"127.0.0.1:{port}",
            smtp_username="relay-user",
            smtp_password=SecretStr("relay-pass"),
        )
        msg = mail("hello", "<login@example.com>")
        SmtpRelay(settings).send(msg)
        assert len(sink.wait_for(1)) == 1
        assert logins.seen == ["relay-user"]
        wrong = settings.model_copy(update={"smtp_password": SecretStr("nope")})
        with pytest.raises(DeliveryFailedError, match="535"):
            SmtpRelay(wrong).send(msg)
        assert "nope" not in repr(wrong)


@pytest.fixture(autouse=True)
def _event_types() -> None:
    """Built without the bootstrap: register the event types as every entry point does."""
    register_event_types()
