"""Email routing and outcomes on an in-memory ledger (a fake relay; the SMTP listener and a
real relay are in tests/integration/test_email_smtp.py)."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from uuid import uuid4

import pytest

from threadline.app.bootstrap import bootstrap
from threadline.app.events import register_event_types
from threadline.app.settings import load_settings
from threadline.channels.email.channel import EmailChannel
from threadline.channels.email.directory import EmailDirectory
from threadline.channels.email.errors import DeliveryFailedError
from threadline.channels.email.relay import SmtpRelay
from threadline.channels.email.service import EmailService, Received
from threadline.ledger.envelope import NewEvent
from threadline.ledger.events import (
    ConversationResolved,
    ConversationStarted,
    IdentityVerified,
    LegOpened,
)
from threadline.ledger.store import Ledger, open_ledger

ANN = "ann@example.com"


class Relay:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[EmailMessage] = []
        self.fail = fail

    def send(self, message: EmailMessage) -> None:
        if self.fail:
            raise DeliveryFailedError("relay refused: 550 mailbox unavailable")
        self.sent.append(message)


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    store = open_ledger("memory://")
    yield store
    store.close()


def service(ledger: Ledger, relay: Relay | None = None) -> EmailService:
    return EmailService(ledger, EmailDirectory(ledger), from_address="help@t.test", relay=relay)


def raw(text: str, message_id: str, sender: str = ANN, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "help@t.test"
    msg["Subject"] = "Question"
    msg["Message-ID"] = message_id
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(text)
    return bytes(msg)


def test_a_verified_address_joins_its_conversation_without_an_identity_event(
    ledger: Ledger,
) -> None:
    ledger.append_batch(
        "c-chat",
        [
            NewEvent("ConversationStarted", ConversationStarted(channel="chat")),
            NewEvent("LegOpened", LegOpened(channel="chat"), leg_id="chat-1"),
            NewEvent(
                "IdentityVerified",
                IdentityVerified(method="otp", subject=f"mailto:{ANN}", level=2),
                leg_id="chat-1",
            ),
        ],
    )
    got = service(ledger).receive(raw("It's me again", "<v1@example.com>"))
    assert (got.route, got.conversation_id) == ("verified", "c-chat")
    types = [e.type for e in ledger.read("c-chat")]
    assert types.count("IdentityVerified") == 1
    assert types[-3:] == ["LegOpened", "MessagePosted", "EmailReceived"]


def test_an_unverified_address_match_never_grants_a_level(ledger: Ledger) -> None:
    first = service(ledger).receive(raw("one", "<u1@example.com>"))
    second = service(ledger).receive(raw("two", "<u2@example.com>"))
    assert second.route == "thread"
    assert second.conversation_id == first.conversation_id
    assert not [e for e in ledger.read_all() if e.type == "IdentityVerified"]


def test_a_reply_to_a_resolved_conversation_starts_a_new_one(ledger: Ledger) -> None:
    svc = service(ledger)
    first = svc.receive(raw("one", "<r1@example.com>"))
    assert first.conversation_id is not None
    ledger.append(first.conversation_id, NewEvent("ConversationResolved", ConversationResolved()))
    again = svc.receive(raw("two", "<r2@example.com>", In_Reply_To="<r1@example.com>"))
    assert again.route == "new"
    assert again.conversation_id != first.conversation_id


def test_a_reply_header_wins_over_the_address(ledger: Ledger) -> None:
    svc = service(ledger)
    first = svc.receive(raw("one", "<w1@example.com>"))
    # Bob forwards into Ann's thread by replying to her mail: it threads by the header.
    other = svc.receive(
        raw(
            "I'm her colleague",
            "<w2@example.com>",
            sender="bob@example.com",
            References="<w1@example.com>",
        )
    )
    assert other.route == "reply"
    assert other.conversation_id == first.conversation_id


def test_reply_outcomes_are_recorded(ledger: Ledger) -> None:
    ok_relay = Relay()
    svc = service(ledger, ok_relay)
    got = svc.receive(raw("hello", "<o1@example.com>"))
    reply = Received(got.route, got.conversation_id, got.leg_id, reply="Hi Ann", mail=got.mail)
    outcome = svc.reply(reply)
    assert outcome is not None
    assert outcome.sent
    [sent] = ok_relay.sent
    assert sent["In-Reply-To"] == "<o1@example.com>"
    assert sent["Message-ID"] == outcome.message_id
    failing = service(ledger, Relay(fail=True))
    failed = failing.reply(reply)
    assert failed is not None
    assert not failed.sent
    types = [e.type for e in ledger.read_all()]
    assert types.count("EmailSent") == 1
    assert types.count("EmailDeliveryFailed") == 1


def test_no_relay_records_a_delivery_failure(ledger: Ledger) -> None:
    svc = service(ledger, None)
    got = svc.receive(raw("hello", "<n1@example.com>"))
    outcome = svc.reply(
        Received(got.route, got.conversation_id, got.leg_id, reply="Hi", mail=got.mail)
    )
    assert outcome is not None
    assert outcome.error is not None
    assert "THREADLINE_SMTP_RELAY" in outcome.error


def test_operator_message_goes_into_the_email_thread(ledger: Ledger) -> None:
    relay = Relay()
    svc = service(ledger, relay)
    got = svc.receive(raw("hello", "<p1@example.com>"))
    assert got.conversation_id is not None
    outcome = svc.send(got.conversation_id, "An operator here.", event_id=uuid4())
    assert outcome.sent
    assert relay.sent[0]["To"] == ANN
    assert relay.sent[0]["In-Reply-To"] == "<p1@example.com>"
    with pytest.raises(DeliveryFailedError):
        svc.send("no-such-conversation", "hi", event_id=uuid4())


def test_bootstrap_wires_email_only_when_listening() -> None:
    env = {
        "THREADLINE_DATABASE_URL": "memory://",
        "THREADLINE_SECRET": "wiring-secret-0123456789abcdef-0123",
    }
    services = bootstrap(load_settings(env))
    try:
        assert services.email is None
    finally:
        services.close()
    env["THREADLINE_SMTP_LISTEN"] = "127.0.0.1:2525"
    env["THREADLINE_SMTP_RELAY"] = "127.0.0.1:2526"
    env["THREADLINE_EMAIL_ADDRESSES"] = "Help@T.test, other@t.test"
    services = bootstrap(load_settings(env))
    try:
        assert isinstance(services.email, EmailChannel)
        assert isinstance(services.email.service._relay, SmtpRelay)
        link = services.email.continue_link("tl1.a.b")
        assert link is not None
        assert link.startswith("mailto:help@t.test?subject=")
    finally:
        services.close()


@pytest.fixture(autouse=True)
def _event_types() -> None:
    """Built without the bootstrap: register the event types as every entry point does."""
    register_event_types()
