"""The first voice utterance names *this* conversation's topic and entities — over many
generated chat histories, handed off through the real service on one shared ledger."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.handoff.handoff_helpers import add, january_claim_chat, start_chat
from threadline.handoff.first_utterance import OfflineUtterances
from threadline.handoff.service import HandoffService
from threadline.handoff.signing import Signer
from threadline.ledger.events import HandoffChannel, IdentityVerified, MessagePosted
from threadline.ledger.store import open_ledger
from threadline.projections.context import build_context

NOUNS = {  # topic noun -> reference prefix the entity extractor knows
    "claim": "CLM",
    "order": "ORD",
    "refund": "REF",
    "appointment": "REF",
    "bill": "REF",
    "payment": "REF",
    "subscription": "REF",
    "delivery": "ORD",
}
QUALIFIERS = [
    "January", "February", "March", "April", "June", "July", "August", "September",
    "October", "November", "December", "dental", "medical", "travel", "pending", "recent",
    "damaged", "overdue", "duplicate", "annual",
]  # fmt: skip
FILLER = [
    "thanks",
    "ok, sounds good",
    "hmm let me think",
    "sure",
    "that would be great",
    "I see",
]


@dataclass(frozen=True)
class History:
    noun: str
    qualifier: str
    ref: str
    cents: int
    verified: bool
    filler: tuple[str, ...]

    @property
    def phrase(self) -> str:
        return f"{self.qualifier} {self.noun}"

    @property
    def spoken_amount(self) -> str:
        whole, cents = divmod(self.cents, 100)
        return f"${whole:,}" + (f".{cents:02d}" if cents else "")

    @property
    def written_amount(self) -> str:
        whole, cents = divmod(self.cents, 100)
        return f"${whole:,}.{cents:02d}"


histories = st.builds(
    History,
    noun=st.sampled_from(sorted(NOUNS)),
    qualifier=st.sampled_from(QUALIFIERS),
    ref=st.integers(1000, 999_999).map(str),
    cents=st.integers(100, 5_000_000),
    verified=st.booleans(),
    filler=st.lists(st.sampled_from(FILLER), max_size=4).map(tuple),
)


def reference(h: History) -> str:
    return f"{NOUNS[h.noun]}-{h.ref}"


def record(ledger: object, cid: str, h: History) -> None:
    start_chat(ledger, cid)  # type: ignore[arg-type]
    turns = [
        ("visitor", f"Hello, I'm writing about my {h.phrase}."),
        ("agent", "Sure, I can help with that."),
        *[("visitor", f) for f in h.filler],
        ("visitor", f"The number is {reference(h)} and it was for {h.written_amount}."),
        ("agent", "Thanks, noted."),
    ]
    for role, text in turns:
        add(ledger, cid, MessagePosted(role=role, text=text))  # type: ignore[arg-type]
    if h.verified:
        add(ledger, cid, IdentityVerified(method="kba", level=2, subject=f"MBR-{h.ref}"))


def mentions(text: str, token: str) -> bool:
    return re.search(rf"(?<![\w$]){re.escape(token)}(?![\w]|[.,]\d)", text) is not None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories, histories)
def test_utterance_names_this_conversation_and_never_the_other(a: History, b: History) -> None:
    ledger = open_ledger("memory://")
    service = HandoffService(ledger, signer=Signer(b"u" * 32, "handoff"))
    record(ledger, "A", a)
    record(ledger, "B", b)
    ticket_b = service.request_handoff("B")
    ticket_a = service.request_handoff("A")
    said_a = service.redeem(ticket_a.token).first_utterance
    said_b = service.redeem(ticket_b.token).first_utterance
    ledger.close()
    for h, said, other in ((a, said_a, b), (b, said_b, a)):
        assert h.phrase in said
        assert mentions(said, reference(h))
        assert mentions(said, h.spoken_amount)
        assert ("already verified" in said) == h.verified
        if reference(other) != reference(h):
            assert not mentions(said, reference(other))
        if other.cents != h.cents:
            assert not mentions(said, other.spoken_amount)
        if other.phrase != h.phrase and other.qualifier != h.qualifier:
            assert other.qualifier not in said
        # Identity material is never read out.
        assert f"MBR-{h.ref}" not in said


def test_deterministic_and_private() -> None:
    ledger = open_ledger("memory://")
    january_claim_chat(ledger, "A")
    ctx = build_context(ledger.read("A"))
    gen = OfflineUtterances()
    first = gen.generate(ctx, level=2, reason="compliance_step")
    assert first == gen.generate(build_context(ledger.read("A")), level=2, reason="compliance_step")
    for fact in ("January claim", "CLM-4821", "$2,340", "HIPAA authorization"):
        assert fact in first
    assert "pending review" in first
    assert "authorisation" in first
    for private in ("MBR-100234", "1984", "03-12"):
        assert private not in first


def test_no_topic_still_refers_to_the_chat() -> None:
    ledger = open_ledger("memory://")
    start_chat(ledger, "A")
    add(ledger, "A", MessagePosted(role="visitor", text="hello there"))
    said = OfflineUtterances().generate(build_context(ledger.read("A")), level=0, reason=None)
    assert "chat" in said
    assert "confirm who you are" in said


OPENINGS = {
    "webrtc": "Thanks for switching to voice.",
    "pstn": "Thanks for taking my call.",
    "sms": "Thanks for continuing by text.",
    "whatsapp": "Thanks for continuing on WhatsApp.",
}


@pytest.mark.parametrize("channel", sorted(OPENINGS))
def test_opening_fits_the_channel_of_the_redeemed_leg(channel: HandoffChannel) -> None:
    ledger = open_ledger("memory://")
    service = HandoffService(ledger, signer=Signer(b"u" * 32, "handoff"))
    january_claim_chat(ledger, "A")
    said = service.redeem(service.request_handoff("A", channel).token).first_utterance
    assert said.startswith(OPENINGS[channel])
    for other, text in OPENINGS.items():
        if other != channel:
            assert text not in said
    assert "January claim" in said
    assert "CLM-4821" in said


def test_the_channel_defaults_to_the_latest_handoffs() -> None:
    ledger = open_ledger("memory://")
    service = HandoffService(ledger, signer=Signer(b"u" * 32, "handoff"))
    january_claim_chat(ledger, "A")
    service.request_handoff("A", "pstn")
    said = OfflineUtterances().generate(build_context(ledger.read("A")), level=2, reason=None)
    assert said.startswith(OPENINGS["pstn"])
    start_chat(ledger, "B")
    said = OfflineUtterances().generate(build_context(ledger.read("B")), level=0, reason=None)
    assert said.startswith(OPENINGS["webrtc"])


def test_a_visitor_calling_in_is_thanked_for_calling() -> None:
    ledger = open_ledger("memory://")
    january_claim_chat(ledger, "A")
    ctx = build_context(ledger.read("A"))
    said = OfflineUtterances().generate(ctx, level=2, reason=None, channel="pstn", inbound=True)
    assert said.startswith("Thanks for calling.")
    assert "taking my call" not in said
    # Inbound means nothing for the widget's own voice leg.
    widget = OfflineUtterances().generate(ctx, level=2, reason=None, inbound=True)
    assert widget.startswith(OPENINGS["webrtc"])


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
def test_text_channels_never_mention_a_call(channel: HandoffChannel) -> None:
    ledger = open_ledger("memory://")
    january_claim_chat(ledger, "A")
    ctx = build_context(ledger.read("A"))
    said = OfflineUtterances().generate(ctx, level=2, reason="compliance_step", channel=channel)
    assert "authorisation" in said
    assert "call" not in said.lower()
    assert "voice" not in said.lower()
    spoken = OfflineUtterances().generate(ctx, level=2, reason="compliance_step", channel="pstn")
    assert "recorded call" in spoken


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories, st.sampled_from(sorted(OPENINGS)))
def test_every_channel_still_names_the_conversation(h: History, channel: HandoffChannel) -> None:
    ledger = open_ledger("memory://")
    service = HandoffService(ledger, signer=Signer(b"u" * 32, "handoff"))
    record(ledger, "A", h)
    said = service.redeem(service.request_handoff("A", channel).token).first_utterance
    ledger.close()
    assert said.startswith(OPENINGS[channel])
    assert h.phrase in said
    assert mentions(said, reference(h))
    assert mentions(said, h.spoken_amount)
    assert ("already verified" in said) == h.verified
    assert f"MBR-{h.ref}" not in said
