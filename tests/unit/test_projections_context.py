from __future__ import annotations

import json

from tests.support.streams import Stream
from threadline.ledger.events import EventData, OpaqueData
from threadline.projections.context import MAX_TURNS, AgentContext, build_context


class FutureThing(EventData):
    """A payload of an event type this code has never heard of."""

    whatever: str


def handoff_story() -> Stream:
    """Chat about a January claim, verified in chat, switched to voice, voice answered."""
    s = Stream("conv-story")
    s.add("ConversationStarted", channel="chat", visitor_ref="v-1")
    s.add("LegOpened", "chat-1", channel="chat", transport_ref="sess-1")
    s.add(
        "MessagePosted",
        "chat-1",
        role="visitor",
        text="Hi, I have a question about my January claim.",
    )
    s.add("MessagePosted", "chat-1", role="agent", text="Sure. What is your claim number?")
    s.add("MessagePosted", "chat-1", role="visitor", text="It's CLM-48213. Why was only $120 paid?")
    s.add("IdentityClaimed", "chat-1", method="cookie", subject="member:M-1")
    s.add("IdentityVerified", "chat-1", method="otp", level=2, subject="member:M-1")
    s.add(
        "ToolCalled", "chat-1", call_id="t1", name="claim_lookup", arguments={"claim": "CLM-48213"}
    )
    s.add("ToolResulted", "chat-1", call_id="t1", result={"status": "partial", "paid": 120})
    s.add(
        "EscalationSignalDetected",
        "chat-1",
        signal="complex_pricing",
        score=0.8,
        evidence="deductible",
    )
    s.add("HandoffOffered", "chat-1", handoff_id="h1", channel="webrtc", reason="complex_pricing")
    s.add("HandoffAccepted", "chat-1", handoff_id="h1", channel="webrtc")
    s.add("LegOpened", "voice-1", channel="webrtc", transport_ref="pc-1")
    s.add("IdentityVerified", "voice-1", method="handoff_token", level=2, subject="member:M-1")
    s.add(
        "HandoffCompleted",
        "voice-1",
        handoff_id="h1",
        leg_id="voice-1",
        first_utterance="I see you were asking about your January claim.",
    )
    s.add(
        "AgentSpoke",
        "voice-1",
        text="I see you were asking about your January claim. The deductible applied.",
        interrupted=True,
        spoken_text="I see you were asking about your January claim.",
    )
    s.add(
        "UtteranceTranscribed",
        "voice-1",
        role="visitor",
        text="so why was that",
        start_ms=0,
        end_ms=900,
        confidence=0.9,
    )
    return s


def test_the_story_gives_everything_an_agent_needs() -> None:
    ctx = build_context(handoff_story().events)
    assert ctx.conversation_id == "conv-story"
    assert ctx.topic is not None
    assert ctx.topic.phrase == "January claim"
    assert ctx.topic.position == 3
    # Least recently mentioned first: the voice agent mentioned January again at 16.
    assert [(e.kind, e.value, e.position, e.last_position, e.mentions) for e in ctx.entities] == [
        ("claim_number", "CLM-48213", 5, 5, 1),
        ("amount", "USD 120.00", 5, 5, 1),
        ("month", "January", 3, 16, 2),
    ]
    assert [e.value for e in ctx.entities_of("claim_number", "month")] == ["January", "CLM-48213"]
    assert [q.text for q in ctx.questions] == [
        "Hi, I have a question about my January claim.",
        "Why was only $120 paid?",
        "so why was that",
    ]
    # The agent's clarifying question answers nothing; the spoken voice turn (cut after its
    # first sentence) speaks to the January claim only, not to why $120 was paid.
    assert [q.answered for q in ctx.questions] == [True, False, False]
    assert [q.text for q in ctx.open_questions] == ["Why was only $120 paid?", "so why was that"]
    v = ctx.verification
    # Where the level was proven; the voice leg inherited it with the handoff token.
    assert (v.level, v.method, v.leg_id, v.channel) == (2, "otp", "chat-1", "chat")
    assert v.claimed_subject == "member:M-1"
    assert [(t.call_id, t.status, t.result) for t in ctx.tool_calls] == [
        ("t1", "ok", {"status": "partial", "paid": 120})
    ]
    assert ctx.signals[0].signal == "complex_pricing"
    assert ctx.signals[0].channel == "chat"
    (h,) = ctx.handoffs
    assert (h.status, h.offered_position, h.accepted_position, h.completed_position) == (
        "completed",
        11,
        12,
        15,
    )
    assert h.leg_id == "voice-1"
    assert ctx.handoff_ids("completed") == ("h1",)
    assert ctx.active_handoff is None
    assert [(leg.leg_id, leg.channel, leg.open) for leg in ctx.legs] == [
        ("chat-1", "chat", True),
        ("voice-1", "webrtc", True),
    ]
    spoken = [t for t in ctx.recent_turns if t.kind == "speech"]
    assert spoken[0].text == "I see you were asking about your January claim."
    assert spoken[0].interrupted
    assert ctx.current_channel == "webrtc"
    assert ctx.last_position == 17
    assert ctx.event_count == 17
    assert ctx.turn_count == 5


def test_context_is_deterministic_and_json_round_trips() -> None:
    events = handoff_story().events
    a, b = build_context(events), build_context(list(events))
    assert a == b
    text = a.model_dump_json()
    assert AgentContext.model_validate_json(text) == a
    assert json.loads(text)["topic"]["phrase"] == "January claim"


def test_folding_in_chunks_equals_folding_at_once() -> None:
    events = handoff_story().events
    whole = build_context(events)
    for cut in range(len(events) + 1):
        assert build_context(events[cut:], start=build_context(events[:cut])) == whole


def test_point_in_time() -> None:
    events = handoff_story().events
    before = build_context(events, upto=10)
    assert before == build_context(events[:10])
    assert before.last_position == 10
    assert before.handoffs == ()
    assert before.verification.channel == "chat"


def test_redelivered_events_are_not_folded_twice() -> None:
    events = handoff_story().events
    assert build_context(events + events[:5]) == build_context(events)


def test_unknown_event_types_are_skipped() -> None:
    s = handoff_story()
    plain = build_context(s.events)
    s.raw("SomethingInvented2030", OpaqueData.model_validate({"whatever": "x"}), "chat-1")
    # A known type name whose payload is not the class the fold expects is skipped too.
    s.raw("MessagePosted", FutureThing(whatever="y"), "chat-1")
    ctx = build_context(s.events)
    assert ctx.last_position == plain.last_position + 2
    assert ctx.model_copy(
        update={"last_position": 0, "last_sequence": 0, "event_count": 0, "last_occurred_at": None}
    ) == plain.model_copy(
        update={"last_position": 0, "last_sequence": 0, "event_count": 0, "last_occurred_at": None}
    )


def test_recent_turns_are_bounded_and_most_recent() -> None:
    s = Stream()
    s.add("ConversationStarted", channel="sms")
    for i in range(MAX_TURNS * 3):
        s.add("MessagePosted", role="visitor" if i % 2 else "agent", text=f"turn {i}")
    ctx = build_context(s.events)
    assert len(ctx.recent_turns) == MAX_TURNS
    assert ctx.recent_turns[-1].text == f"turn {MAX_TURNS * 3 - 1}"
    assert ctx.turn_count == MAX_TURNS * 3
    assert ctx.recent_turns[0].channel == "sms"  # no leg: the conversation's first channel


def test_interrupted_speech_with_nothing_spoken_is_not_a_turn() -> None:
    s = Stream()
    s.add("ConversationStarted", channel="webrtc")
    s.add("AgentSpoke", text="Hello, how can I help?", interrupted=True)
    assert build_context(s.events).recent_turns == ()


def test_topic_keeps_its_qualifier_and_follows_a_new_subject() -> None:
    s = Stream()
    s.add("ConversationStarted", channel="chat")
    s.add("MessagePosted", role="visitor", text="about my January claim")
    s.add("MessagePosted", role="visitor", text="the claim is late")
    assert build_context(s.events).topic.phrase == "January claim"  # type: ignore[union-attr]
    s.add("MessagePosted", role="visitor", text="also my refund?")
    assert build_context(s.events).topic.phrase == "refund"  # type: ignore[union-attr]
    s.add("MessagePosted", role="agent", text="Your claim and your refund are fine.")
    assert build_context(s.events).topic.phrase == "refund"  # type: ignore[union-attr]


def test_verification_never_goes_down_and_failures_count() -> None:
    s = Stream()
    s.add("ConversationStarted", channel="chat")
    s.add("IdentityVerified", method="kba", level=2, subject="m1")
    s.add("VerificationFailed", method="otp", reason="wrong code")
    s.add("IdentityVerified", method="cookie", level=1, subject="m1")
    v = build_context(s.events).verification
    assert (v.level, v.method, v.failures, v.last_failure_reason) == (2, "kba", 1, "wrong code")


def test_tool_errors_and_handoff_outcomes() -> None:
    s = Stream()
    s.add("ConversationStarted", channel="chat")
    s.add("ToolCalled", call_id="a", name="lookup")
    s.add("ToolResulted", call_id="a", error="timeout")
    s.add("ToolResulted", call_id="ghost", result=1)
    s.add("ToolCalled", call_id="b", name="lookup")
    s.add("HandoffOffered", handoff_id="h1")
    s.add("HandoffDeclined", handoff_id="h1", reason="busy")
    s.add("HandoffOffered", handoff_id="h2", channel="pstn")
    ctx = build_context(s.events)
    assert [(t.call_id, t.status, t.error) for t in ctx.tool_calls] == [
        ("a", "error", "timeout"),
        ("b", "pending", None),
    ]
    assert [(h.handoff_id, h.status) for h in ctx.handoffs] == [
        ("h1", "declined"),
        ("h2", "offered"),
    ]
    assert ctx.active_handoff is not None
    assert ctx.active_handoff.channel == "pstn"


def test_resolution_closes_questions_and_erasure_drops_names() -> None:
    s = Stream()
    s.add("ConversationStarted", channel="chat")
    s.add("IdentityClaimed", method="cookie", subject="jane")
    s.add("MessagePosted", role="visitor", text="My name is Jane Doe. Where is order 55120?")
    ctx = build_context(s.events)
    assert [e.kind for e in ctx.entities] == ["name", "order_number"]
    assert len(ctx.open_questions) == 1
    s.add("ConversationResolved", outcome="answered")
    s.add("CSATRecorded", score=5)
    s.add("SubjectErased", subject="jane")
    ctx = build_context(s.events)
    assert ctx.open_questions == ()
    assert (ctx.resolved, ctx.outcome, ctx.csat) == (True, "answered", 5)
    assert [e.kind for e in ctx.entities] == ["order_number"]
    assert ctx.verification.claimed_subject is None
    assert ctx.erased_subjects == ("jane",)


def test_leg_close_is_recorded() -> None:
    s = Stream()
    s.add("ConversationStarted", channel="chat")
    s.add("LegOpened", "l1", channel="chat")
    s.add("LegClosed", "l1", reason="visitor left")
    (leg,) = build_context(s.events).legs
    assert (leg.open, leg.closed_position, leg.close_reason) == (False, 3, "visitor left")
    assert build_context(s.events).open_legs == ()


def test_a_passing_mention_does_not_change_the_topic() -> None:
    s = Stream()
    s.add("ConversationStarted", channel="chat")
    s.add("MessagePosted", role="visitor", text="I'm on the Gold Plus plan.")
    ctx = build_context(s.events)
    assert ctx.topic is not None
    assert (ctx.topic.phrase, ctx.topic.explicit) == ("plan", False)  # better than nothing
    s.add("MessagePosted", role="visitor", text="I have a question about my January claim")
    s.add("MessagePosted", role="visitor", text="I'm on the Gold Plus plan, policy POL-12345.")
    ctx = build_context(s.events)
    assert ctx.topic is not None
    assert (ctx.topic.phrase, ctx.topic.explicit, ctx.topic.position) == ("January claim", True, 3)
    # The noun in the question wins over an earlier noun in the same turn.
    s.add("MessagePosted", role="visitor", text="My plan is fine. Why is my deductible so high?")
    assert build_context(s.events).topic.phrase == "deductible"  # type: ignore[union-attr]


def test_text_analysis_is_memoised_and_pure() -> None:
    from threadline.projections.text import analyse, clear_cache

    clear_cache()
    first = analyse("Where is order 55120?")
    assert analyse("Where is order 55120?") is first
    clear_cache()
    again = analyse("Where is order 55120?")
    assert again == first
    assert again is not first
    long = "Where is order 55120? " * 100
    assert analyse(long) == analyse(long)
    assert analyse(long) is not analyse(long)  # too long to cache
