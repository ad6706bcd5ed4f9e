from __future__ import annotations

from tests.support.streams import Stream
from threadline.ledger.events import OpaqueData
from threadline.projections.identity import build_identity
from threadline.projections.transcript import build_transcript, render_text


def story() -> Stream:
    s = Stream("conv-t")
    s.add("ConversationStarted", channel="chat")
    s.add("LegOpened", "chat-1", channel="chat")
    s.add("MessagePosted", "chat-1", role="visitor", text="About my January claim?")
    s.add("IdentityClaimed", "chat-1", method="cookie", subject="m1")
    s.add("IdentityVerified", "chat-1", method="otp", level=2, subject="m1")
    s.add("HandoffOffered", "chat-1", handoff_id="h1", reason="complex_pricing")
    s.add("HandoffAccepted", "chat-1", handoff_id="h1")
    s.add("LegOpened", "voice-1", channel="webrtc")
    s.add("IdentityVerified", "voice-1", method="handoff_token", level=2, subject="m1")
    s.add("HandoffCompleted", "voice-1", handoff_id="h1", leg_id="voice-1", first_utterance="Hi")
    s.add(
        "AgentSpoke",
        "voice-1",
        text="I see you were asking about your January claim. It was paid.",
        interrupted=True,
        spoken_text="I see you were asking",
    )
    s.add("AgentSpoke", "voice-1", text="Nothing was heard", interrupted=True)
    s.add(
        "UtteranceTranscribed",
        "voice-1",
        role="visitor",
        text="yes the claim",
        start_ms=100,
        end_ms=900,
        confidence=0.8,
    )
    s.add("LegClosed", "voice-1", reason="hangup")
    s.add("MessagePosted", "chat-1", role="agent", text="Anything else?")
    s.add("ConversationResolved")
    return s


def test_transcript_interleaves_legs_with_markers() -> None:
    t = build_transcript(story().events)
    assert [(e.kind, e.channel, e.role) for e in t.entries] == [
        ("conversation_started", "chat", None),
        ("leg_opened", "chat", None),
        ("message", "chat", "visitor"),
        ("handoff_offered", "chat", None),
        ("handoff_accepted", "chat", None),
        ("leg_opened", "webrtc", None),
        ("handoff_completed", "webrtc", None),
        ("speech", "webrtc", "agent"),
        ("utterance", "webrtc", "visitor"),
        ("leg_closed", "webrtc", None),
        ("message", "chat", "agent"),
        ("resolved", "chat", None),
    ]
    speech = t.entries[7]
    assert speech.text == "I see you were asking"  # only what was actually spoken
    assert speech.interrupted
    assert [e.position for e in t.turns] == [3, 11, 13, 15]
    assert t.entries[3].handoff_id == "h1"
    assert t.entries[3].text == "switch to webrtc offered (complex_pricing)"
    text = render_text(t)
    assert "webrtc   agent: I see you were asking [interrupted]" in text
    assert "-- webrtc leg closed: hangup --" in text


def test_transcript_chunks_point_in_time_and_unknown_types() -> None:
    s = story()
    s.raw("FromTheFuture", OpaqueData.model_validate({"x": 1}), "chat-1")
    events = s.events
    whole = build_transcript(events)
    assert whole.last_position == len(events)
    assert len(whole.entries) == 12
    for cut in range(len(events) + 1):
        assert build_transcript(events[cut:], start=build_transcript(events[:cut])) == whole
    assert build_transcript(events, upto=5) == build_transcript(events[:5])
    assert build_transcript(events, upto=5).entries[-1].kind == "message"


def test_identity_inherited_by_handoff_token_is_not_reverification() -> None:
    state = build_identity(story().events)
    assert (state.level, state.method, state.verified_leg_id, state.verified_channel) == (
        2,
        "otp",
        "chat-1",
        "chat",
    )
    assert state.reverifications == 0
    assert not state.reverified
    voice = state.leg("voice-1")
    assert voice is not None
    assert (voice.level, voice.method, voice.inherited, voice.reverified) == (
        2,
        "handoff_token",
        True,
        False,
    )
    assert [c.kind for c in state.checks] == ["claimed", "verified", "verified"]


def test_identity_reverification_on_voice_leg_after_handoff() -> None:
    s = Stream()
    s.add("ConversationStarted", channel="chat")
    s.add("LegOpened", "c", channel="chat")
    s.add("IdentityVerified", "c", method="otp", level=2, subject="m1")
    s.add("LegOpened", "v", channel="pstn")
    s.add("VerificationFailed", "v", method="kba", reason="wrong date of birth")
    s.add("IdentityVerified", "v", method="kba", level=2, subject="m1")
    s.add("IdentityVerified", "v", method="strong", level=3, subject="m1")
    state = build_identity(s.events)
    assert state.reverifications == 2  # the failed and the repeated level-2 check
    assert [c.reverification for c in state.checks] == [False, True, True, False]
    leg = state.leg("v")
    assert leg is not None
    assert (leg.reverified, leg.failures, leg.level) == (True, 1, 3)
    # The step-up to 3 is where level 3 was proven.
    assert (state.level, state.verified_leg_id, state.verified_channel) == (3, "v", "pstn")
    chat = state.leg("c")
    assert chat is not None
    assert not chat.reverified


def test_failure_before_any_verification_is_not_reverification() -> None:
    s = Stream()
    s.add("ConversationStarted", channel="chat")
    s.add("VerificationFailed", method="otp", reason="expired")
    s.add("IdentityVerified", method="otp", level=1, subject="m")
    state = build_identity(s.events)
    assert (state.failures, state.reverifications, state.level) == (1, 0, 1)


def test_identity_point_in_time_chunks_and_erasure() -> None:
    s = story()
    s.add("SubjectErased", subject="m1")
    events = s.events
    whole = build_identity(events)
    assert whole.subject is None
    assert whole.claimed_subject is None
    assert all(c.subject is None for c in whole.checks)
    for cut in range(len(events) + 1):
        assert build_identity(events[cut:], start=build_identity(events[:cut])) == whole
    before = build_identity(events, upto=4)
    assert (before.level, before.claimed_subject) == (0, "m1")
