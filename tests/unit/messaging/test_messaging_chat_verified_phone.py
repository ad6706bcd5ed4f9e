"""A visitor verified by the chat agent (date of birth + member/policy number) whose phone is
on file can be reached by phone and text: the agent records the number as a second verified
subject, SMS and PSTN routing find the conversation by it, and the identity projection and
the re-verification metric do not count it as a re-verification."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.support.tools import seeded_tools
from tests.unit.handoff.handoff_helpers import CHAT_LEG, add, start_chat
from tests.unit.messaging.test_messaging_service import FakeProvider
from threadline.agent.chat import ChatAgent
from threadline.agent.factory import build_agent
from threadline.agent.sqltools.seed import DEMO_MEMBER, OTHER_MEMBERS
from threadline.agent.sqltools.sql import SqlToolBackend
from threadline.agent.voice import VoiceAgent
from threadline.channels.messaging.directory import PhoneDirectory
from threadline.channels.messaging.provider import InboundMessage
from threadline.channels.messaging.service import MessagingService
from threadline.handoff import tokens
from threadline.handoff.service import HandoffService
from threadline.handoff.signing import Signer
from threadline.ledger.events import IdentityVerified, LegOpened
from threadline.ledger.store import Ledger, open_ledger
from threadline.projections.context import build_context
from threadline.projections.identity import build_identity
from threadline.projections.metrics import build_metrics

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SIGNER = Signer(b"k" * 32, tokens.PURPOSE)
DANA_PHONE = DEMO_MEMBER.phone or ""


@pytest.fixture
def tools() -> Iterator[SqlToolBackend]:
    with seeded_tools(NOW) as backend:
        yield backend


@pytest.fixture
def store() -> Iterator[Ledger]:
    ledger = open_ledger("memory://")
    yield ledger
    ledger.close()


def verify_in_chat(store: Ledger, tools: SqlToolBackend, cid: str, details: str) -> None:
    start_chat(store, cid)
    chat = ChatAgent(store, build_agent(tools, clock=lambda: NOW))
    chat.visitor_turn(cid, "Hi, I have a question about my January claim", leg_id=CHAT_LEG)
    reply = chat.visitor_turn(cid, details, leg_id=CHAT_LEG).reply or ""
    assert "verified" in reply


def verifications(store: Ledger, cid: str) -> list[IdentityVerified]:
    return [e.data for e in store.read(cid) if isinstance(e.data, IdentityVerified)]


def test_chat_verification_records_the_phone_on_file(store: Ledger, tools: SqlToolBackend) -> None:
    assert DANA_PHONE.startswith("+")
    verify_in_chat(store, tools, "A", "born 1984-03-12, member number MBR-100234")
    assert [(v.method, v.level, v.subject) for v in verifications(store, "A")] == [
        ("kba", 2, "MBR-100234"),
        ("phone_on_file", 1, f"tel:{DANA_PHONE}"),
    ]
    # The member stays the conversation's subject (the agent reads account data with it).
    ctx = build_context(store.read("A"))
    assert (ctx.verification.subject, ctx.verification.level) == ("MBR-100234", 2)
    identity = build_identity(store.read("A"))
    assert identity.subject == "MBR-100234"
    assert identity.reverifications == 0
    assert not any(c.reverification for c in identity.checks)
    # Routing by number: "dial the verified number" and SMS linking find this conversation.
    directory = PhoneDirectory(store)
    assert directory.verified_phone("A") == DANA_PHONE
    assert directory.verified_conversation(DANA_PHONE) == "A"


def test_a_text_from_the_number_joins_the_chat_without_a_challenge(
    store: Ledger, tools: SqlToolBackend
) -> None:
    verify_in_chat(store, tools, "A", "born 1984-03-12, member number MBR-100234")
    svc = MessagingService(
        store,
        PhoneDirectory(store),
        {"twilio": FakeProvider()},  # type: ignore[dict-item]
        handoffs=HandoffService(store, signer=SIGNER),
    )
    msg = InboundMessage("twilio", "sms", "SM1", DANA_PHONE, "+15559990000", "texting now")
    got = svc.record(msg)
    assert (got.route, got.conversation_id) == ("verified", "A")
    leg_events = [e for e in store.read("A") if e.leg_id == got.leg_id]
    assert leg_events[0].data == LegOpened(channel="sms", transport_ref=f"sms:{DANA_PHONE}")
    assert not [e for e in leg_events if "Verif" in e.type]
    assert build_identity(store.read("A")).reverifications == 0
    assert build_metrics(store.read("A")).reverification_rate == 0


def test_no_phone_on_file_records_the_member_only(store: Ledger, tools: SqlToolBackend) -> None:
    maria = OTHER_MEMBERS[1]
    assert maria.phone is None
    verify_in_chat(store, tools, "A", f"born {maria.date_of_birth}, policy {maria.policy_number}")
    assert [(v.method, v.subject) for v in verifications(store, "A")] == [("kba", maria.member_id)]
    assert PhoneDirectory(store).verified_phone("A") is None


def test_verifying_on_a_voice_leg_after_a_switch_is_no_reverification(
    store: Ledger, tools: SqlToolBackend
) -> None:
    # An unverified chat switches to voice (level 0 inherited); the voice agent verifies:
    # a first verification, and its phone-on-file subject is part of the same check.
    start_chat(store, "A")
    service = HandoffService(store, signer=Signer(b"h" * 32, "handoff"))
    grant = service.redeem(service.request_handoff("A").token)
    assert grant.level == 0
    voice = VoiceAgent(store, build_agent(tools, clock=lambda: NOW))
    said = "my January claim please, born 1984-03-12, member number MBR-100234"
    assert "verified" in voice.turn("A", grant.leg_id, said).reply
    on_voice = [
        (e.data.method, e.leg_id) for e in store.read("A") if isinstance(e.data, IdentityVerified)
    ]
    assert on_voice == [("kba", grant.leg_id), ("phone_on_file", grant.leg_id)]
    metrics = build_metrics(store.read("A"))
    assert metrics.switched_conversations == 1
    assert metrics.reverified_after_switch == 0
    assert build_identity(store.read("A")).reverifications == 0
    add(store, "A", IdentityVerified(method="kba", level=2, subject="MBR-100234"), grant.leg_id)
    assert build_metrics(store.read("A")).reverified_after_switch == 1  # a real one still counts


def test_a_text_from_the_number_on_file_gets_no_account_data_until_it_verifies(
    store: Ledger, tools: SqlToolBackend
) -> None:
    """Issue 17, class 10: sender numbers are spoofable. A text from the number on file joins
    the verified chat (the thread is linked) but does not inherit its level: the agent
    discloses nothing from the account until this sender verifies."""
    verify_in_chat(store, tools, "A", "born 1984-03-12, member number MBR-100234")
    chat = ChatAgent(store, build_agent(tools, clock=lambda: NOW))
    asked = "what is the status of my January claim?"
    in_chat = chat.visitor_turn("A", asked, leg_id=CHAT_LEG).reply or ""
    svc = MessagingService(
        store,
        PhoneDirectory(store),
        {"twilio": FakeProvider()},  # type: ignore[dict-item]
        turns=chat,
        handoffs=HandoffService(store, signer=SIGNER),
    )
    got = svc.record(InboundMessage("twilio", "sms", "SM9", DANA_PHONE, "+15559990000", asked))
    assert (got.route, got.conversation_id) == ("verified", "A")
    by_text = got.reply or ""
    claim_ids = {w.strip(".,;:()") for w in in_chat.split() if w.startswith("CLM")}
    assert claim_ids, in_chat  # the verified chat leg does see the claim
    assert not any(c in by_text for c in claim_ids), by_text
    assert "verif" in by_text.lower() or "date of birth" in by_text.lower(), by_text
