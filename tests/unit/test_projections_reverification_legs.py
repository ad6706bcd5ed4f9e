"""The re-verification convention on one conversation that moves from chat to WebRTC voice,
to a phone call and to SMS: legs that inherit (a handoff token, a matched caller id or sender
number) never count, token rejections never count, a phone-on-file subject never counts, and
the visitor being asked again on any leg does."""

from __future__ import annotations

import pytest

from tests.support.streams import Stream
from threadline.ledger.events import IdentityVerified, VerificationFailed
from threadline.projections.identity import build_identity, is_reverification
from threadline.projections.metrics import build_metrics

PHONE = "+12025550142"


def omnichannel() -> Stream:
    s = Stream()
    s.add("ConversationStarted", channel="chat")
    s.add("LegOpened", "chat", channel="chat", transport_ref="widget")
    s.add("MessagePosted", "chat", role="visitor", text="about my January claim")
    s.add("IdentityClaimed", "chat", method="kba", subject="MBR-100234")
    s.add("IdentityVerified", "chat", method="kba", level=2, subject="MBR-100234")
    s.add("IdentityVerified", "chat", method="phone_on_file", level=1, subject=f"tel:{PHONE}")
    # WebRTC: a stale token is refused (the system checking), then the fresh one is redeemed.
    s.add("HandoffOffered", "chat", handoff_id="h1", channel="webrtc", reason="compliance_step")
    s.add("HandoffAccepted", "chat", handoff_id="h1", channel="webrtc")
    s.add("VerificationFailed", None, method="handoff_token", reason="expired")
    s.add("LegOpened", "voice", channel="webrtc", transport_ref="webrtc:abc")
    s.add("IdentityVerified", "voice", method="handoff_token", level=2, subject="MBR-100234")
    s.add("HandoffCompleted", "voice", handoff_id="h1", leg_id="voice", first_utterance="Hi")
    s.add("LegClosed", "voice", reason="hangup")
    # PSTN: the visitor calls back; the caller id is the verified number (no identity event).
    s.add("LegOpened", "call-in", channel="pstn", transport_ref=f"tel:{PHONE};call-id=c1")
    s.add(
        "UtteranceTranscribed",
        "call-in",
        role="visitor",
        text="it is me again",
        start_ms=0,
        end_ms=900,
        confidence=0.9,
    )
    s.add("LegClosed", "call-in", reason="bye")
    # PSTN dial-out with a handoff token in the INVITE.
    s.add("HandoffOffered", "chat", handoff_id="h2", channel="pstn")
    s.add("HandoffAccepted", "chat", handoff_id="h2", channel="pstn")
    s.add("LegOpened", "call-out", channel="pstn", transport_ref=f"tel:{PHONE};call-id=c2")
    s.add("IdentityVerified", "call-out", method="handoff_token", level=2, subject="MBR-100234")
    s.add("HandoffCompleted", "call-out", handoff_id="h2", leg_id="call-out", first_utterance="Hi")
    s.add("LegClosed", "call-out", reason="bye")
    # SMS: a text from the verified number joins (no identity event); a replayed
    # continue-by-text token in a later text is refused.
    s.add("LegOpened", "sms", channel="sms", transport_ref=f"sms:{PHONE}")
    s.add("MessagePosted", "sms", role="visitor", text="thanks, texting now")
    s.add("VerificationFailed", "sms", method="handoff_token", reason="replayed")
    s.add("IdentityVerified", "sms", method="phone_on_file", level=1, subject=f"tel:{PHONE}")
    return s


def test_inheriting_legs_and_system_checks_are_not_reverifications() -> None:
    s = omnichannel()
    identity = build_identity(s.events)
    assert (identity.subject, identity.level, identity.method) == ("MBR-100234", 2, "kba")
    assert identity.verified_channel == "chat"
    assert identity.reverifications == 0
    assert not any(leg.reverified for leg in identity.legs)
    assert {leg.channel for leg in identity.legs} == {"chat", "webrtc", "pstn", "sms"}
    token_checks = [c for c in identity.checks if c.method == "handoff_token"]
    assert [c.kind for c in token_checks] == ["failed", "verified", "verified", "failed"]
    assert all(c.inherited for c in token_checks if c.kind == "verified")
    assert identity.failures == 2  # recorded, just not counted as re-verifications
    m = build_metrics(s.events)
    assert (m.conversations, m.switched_conversations) == (1, 1)
    assert m.channel_switches == 3  # chat → webrtc → pstn (twice: one switch) → sms
    assert m.reverified_after_switch == 0
    assert m.reverification_rate == 0.0


@pytest.mark.parametrize(
    ("leg", "data"),
    [
        ("voice", VerificationFailed(method="kba", reason="details_mismatch")),
        ("call-in", IdentityVerified(method="kba", level=2, subject="MBR-100234")),
        ("call-out", IdentityVerified(method="otp", level=1, subject=f"tel:{PHONE}")),
        ("sms", VerificationFailed(method="otp", reason="wrong_code")),
    ],
)
def test_being_asked_again_on_any_leg_counts(
    leg: str, data: IdentityVerified | VerificationFailed
) -> None:
    s = omnichannel()
    assert is_reverification(2, data)
    s.add(type(data).__name__, leg, data=data)
    identity = build_identity(s.events)
    assert identity.reverifications == 1
    assert [x.leg_id for x in identity.legs if x.reverified] == [leg]
    m = build_metrics(s.events)
    assert m.reverified_after_switch == 1
    assert m.reverification_rate == 1.0


def test_the_method_conventions() -> None:
    token_ok = IdentityVerified(method="handoff_token", level=2, subject="MBR-100234")
    token_bad = VerificationFailed(method="handoff_token", reason="forged")
    phone = IdentityVerified(method="phone_on_file", level=1, subject=f"tel:{PHONE}")
    for data in (token_ok, token_bad, phone):
        assert not is_reverification(2, data)
        assert not is_reverification(0, data)
    assert not is_reverification(1, IdentityVerified(method="kba", level=2, subject="m"))
