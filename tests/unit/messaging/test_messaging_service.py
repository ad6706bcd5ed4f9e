"""Routing and idempotency of inbound messages on a real (memory) ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from uuid import uuid4

import pytest

from threadline.access.authfail import FailedAuthGate
from threadline.access.errors import RateLimitedError
from threadline.access.ratelimit import RateLimiter
from threadline.channels.messaging import ids
from threadline.channels.messaging.directory import PhoneDirectory
from threadline.channels.messaging.provider import DeliveryReport, InboundMessage, SentMessage
from threadline.channels.messaging.service import MessagingService
from threadline.handoff import tokens
from threadline.handoff.service import HandoffService
from threadline.handoff.signing import Signer
from threadline.ledger.envelope import NewEvent
from threadline.ledger.events import (
    ConversationResolved,
    ConversationStarted,
    IdentityVerified,
    LegOpened,
    MessagePosted,
)
from threadline.ledger.store import Ledger, open_ledger

PHONE = "+15551230001"
SIGNER = Signer(b"k" * 32, tokens.PURPOSE)


class FakeProvider:
    """Records sends; the outbound HTTP client itself is tested against a loopback server."""

    name = "twilio"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def authenticate(self, request: object) -> None:
        return None

    def parse(self, request: object) -> list[object]:
        return []

    async def send(self, channel: str, to: str, text: str) -> SentMessage:
        self.sent.append((channel, to, text))
        return SentMessage("twilio", "sms", f"SMout{len(self.sent)}", "queued", to)


class ParsingProvider(FakeProvider):
    """A provider whose (already authenticated) webhook carries one message."""

    def __init__(self, message: InboundMessage) -> None:
        super().__init__()
        self.message = message

    def parse(self, request: object) -> list[object]:
        return [self.message]


@pytest.fixture
def store() -> Iterator[Ledger]:
    ledger = open_ledger("memory://")
    yield ledger
    ledger.close()


def service(store: Ledger, provider: FakeProvider | None = None) -> MessagingService:
    return MessagingService(
        store,
        PhoneDirectory(store),
        {"twilio": provider or FakeProvider()},  # type: ignore[dict-item]
        handoffs=HandoffService(store, signer=SIGNER),
    )


def sms(sid: str, text: str = "hello", number: str = PHONE) -> InboundMessage:
    return InboundMessage("twilio", "sms", sid, number, "+15559990000", text)


def chat_conversation(
    store: Ledger, *, verified_phone: str | None = PHONE, subject: str | None = None
) -> str:
    cid = str(uuid4())
    events = [
        NewEvent("ConversationStarted", ConversationStarted(channel="chat")),
        NewEvent("LegOpened", LegOpened(channel="chat"), leg_id="chat-1"),
        NewEvent(
            "MessagePosted",
            MessagePosted(role="visitor", text="my January claim"),
            leg_id="chat-1",
        ),
    ]
    if verified_phone or subject:
        who = subject or f"tel:{verified_phone}"
        verified = IdentityVerified(method="kba", level=2, subject=who)
        events.append(NewEvent("IdentityVerified", verified, leg_id="chat-1"))
    store.append_batch(cid, events)
    return cid


def test_unknown_number_starts_a_conversation_and_its_thread_continues(store: Ledger) -> None:
    svc = service(store)
    first = svc.record(sms("SM1", "hi there"))
    assert first.route == "new"
    assert first.conversation_id == ids.conversation_for_message("twilio", "SM1")
    second = svc.record(sms("SM2", "about my claim"))
    assert (second.route, second.conversation_id, second.leg_id) == (
        "thread",
        first.conversation_id,
        first.leg_id,
    )
    types = [e.type for e in store.read(first.conversation_id)]
    assert types == ["ConversationStarted", "LegOpened", "MessagePosted", "MessagePosted"]


def test_retries_append_nothing(store: Ledger) -> None:
    svc = service(store)
    svc.record(sms("SM1"))
    before = store.max_sequence()
    again = svc.record(sms("SM1"))
    assert again.duplicate
    assert store.max_sequence() == before


def test_verified_number_joins_the_open_chat_as_a_new_leg(store: Ledger) -> None:
    cid = chat_conversation(store)
    svc = service(store)
    got = svc.record(sms("SM1", "texting instead"))
    assert (got.route, got.conversation_id) == ("verified", cid)
    events = store.read(cid)
    assert [e.type for e in events[-2:]] == ["LegOpened", "MessagePosted"]
    assert events[-2].data == LegOpened(channel="sms", transport_ref=f"sms:{PHONE}")
    # No identity challenge or re-verification on the new leg.
    assert not [e for e in events if e.leg_id == got.leg_id and "Verif" in e.type]
    # The next message stays in that thread.
    assert service(store).record(sms("SM2")).route == "thread"


def test_resolved_conversation_is_not_joined(store: Ledger) -> None:
    cid = chat_conversation(store)
    store.append(cid, NewEvent("ConversationResolved", ConversationResolved()))
    got = service(store).record(sms("SM1"))
    assert got.route == "new"
    assert got.conversation_id != cid


def test_unverified_conversation_is_not_joined(store: Ledger) -> None:
    chat_conversation(store, verified_phone=None)
    assert service(store).record(sms("SM1")).route == "new"


def token_for(store: Ledger, cid: str, channel: str = "sms") -> str:
    """What `POST /v1/conversations/{id}/handoffs {channel: sms}` hands the widget."""
    service = HandoffService(store, signer=SIGNER)
    return service.request_handoff(cid, channel).token  # type: ignore[arg-type]


def test_continue_by_text_token_joins_with_the_chat_level(store: Ledger) -> None:
    cid = chat_conversation(store, verified_phone=None, subject="member:M-1001")
    svc = service(store)
    other = "+15557770000"
    token = token_for(store, cid)
    got = svc.record(sms("SM9", f"Continue my conversation {token}", other))
    assert (got.route, got.conversation_id) == ("token", cid)
    assert got.reply is not None
    assert "January claim" in got.reply
    leg_events = [e for e in store.read(cid) if e.leg_id == got.leg_id]
    assert [e.type for e in leg_events] == [
        "LegOpened",
        "IdentityVerified",
        "HandoffCompleted",
        "MessagePosted",
        "MessagePosted",
    ]
    assert leg_events[0].data == LegOpened(channel="sms", transport_ref=f"sms:{other}")
    verified = leg_events[1].data
    assert isinstance(verified, IdentityVerified)
    assert (verified.method, verified.level, verified.subject) == (
        "handoff_token",
        2,
        "member:M-1001",  # the identity verified in chat, carried
    )
    visitor = leg_events[3].data
    assert isinstance(visitor, MessagePosted)
    assert "tl1." not in visitor.text  # the token is never stored
    # Retried: nothing new, no second reply.
    before = store.max_sequence()
    again = svc.record(sms("SM9", f"Continue my conversation {token}", other))
    assert again.duplicate
    assert again.reply is None
    assert store.max_sequence() == before


def test_token_is_single_use_and_bound_to_channel(store: Ledger) -> None:
    cid = chat_conversation(store, verified_phone=None)
    svc = service(store)
    token = token_for(store, cid)
    assert svc.record(sms("SM1", f"go {token}", "+15557770000")).route == "token"
    reused = svc.record(sms("SM2", f"go {token}", "+15558880000"))
    assert reused.route == "new"
    assert reused.conversation_id != cid
    # The refusal is recorded where the token pointed, by the handoff service, once.
    failed = [e.data for e in store.read(cid) if e.type == "VerificationFailed"]
    assert [f.reason for f in failed] == ["replayed"]  # type: ignore[attr-defined]
    wrong = svc.record(sms("SM3", f"go {token_for(store, cid, 'whatsapp')}", "+15556660000"))
    assert wrong.route == "new"


def test_forged_token_is_refused_and_recorded_nowhere(store: Ledger) -> None:
    cid = chat_conversation(store, verified_phone=None)
    real = token_for(store, cid)
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    before = store.version(cid)
    got = service(store).record(sms("SM1", f"go {forged}", "+15557770000"))
    assert got.route == "new"
    assert store.version(cid) == before  # its claims are not trusted: nothing written there
    assert "tl1." not in str([e.data for e in store.read(got.conversation_id or "")])


def test_refused_continue_tokens_hit_the_failed_auth_limit(store: Ledger) -> None:
    cid = chat_conversation(store, verified_phone=None)
    real = token_for(store, cid)
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    gate = FailedAuthGate(RateLimiter(0.001, 3))
    provider = ParsingProvider(sms("SMf4", f"go {forged}", "+15557770000"))
    svc = MessagingService(
        store,
        PhoneDirectory(store),
        {"twilio": provider},  # type: ignore[dict-item]
        handoffs=HandoffService(store, signer=SIGNER),
        failed_auth=gate,
    )
    for i in range(3):
        svc.record(sms(f"SMf{i}", f"go {forged}", "+15557770000"))
    with pytest.raises(RateLimitedError):
        svc.record(sms("SMf3", f"go {forged}", "+15557770000"))
    head = store.max_sequence()
    with pytest.raises(RateLimitedError):  # refused before anything is looked at or recorded
        svc.receive("twilio", None)  # type: ignore[arg-type]
    assert store.max_sequence() == head
    # Another sender, and token-less messages, are not affected.
    assert svc.record(sms("SMok", "hello", "+15554440000")).route == "new"


def test_delivery_reports_follow_sent_messages(store: Ledger) -> None:
    provider = FakeProvider()
    svc = service(store, provider)
    first = svc.record(sms("SM1"))
    cid = first.conversation_id or ""
    sent = asyncio.run(svc.send("twilio", cid, first.leg_id, "sms", PHONE, "Thanks, on it."))
    assert provider.sent == [("sms", PHONE, "Thanks, on it.")]
    report = DeliveryReport("twilio", "sms", sent.provider_message_id, "delivered")
    got = svc.record(report)
    assert (got.route, got.conversation_id, got.duplicate) == ("status", cid, False)
    assert svc.record(report).duplicate
    statuses = [e.data.status for e in store.read(cid) if e.type == "MessageDeliveryUpdated"]  # type: ignore[attr-defined]
    assert statuses == ["queued", "delivered"]
    before = store.max_sequence()
    unknown = svc.record(DeliveryReport("twilio", "sms", "SMnot-ours", "delivered"))
    assert unknown.route == "ignored"
    assert store.max_sequence() == before
