"""A hand-built metrics scenario with known answers (10 conversations, 4 switched, 1 of them
re-verified after the switch), shared by the metrics, read-model and benchmark code."""

from __future__ import annotations

import pytest

from tests.support.streams import Stream
from threadline.ledger.envelope import RecordedEvent
from threadline.projections.metrics import HandoffMetrics


def chat_only(csat: int | None, resolved: bool = True) -> Stream:
    s = Stream()
    s.add("ConversationStarted", channel="chat")
    s.add("LegOpened", "c", channel="chat")
    s.add("MessagePosted", "c", role="visitor", text="Where is my refund?")
    s.add("IdentityVerified", "c", method="otp", level=2, subject="m")
    if resolved:
        s.add("ConversationResolved")
    if csat is not None:
        s.add("CSATRecorded", score=csat)
    return s


def switched(
    csat: int | None,
    *,
    accept_after: float,
    complete_after: float,
    reverify: bool = False,
    resolved: bool = True,
    csat_before_switch: int | None = None,
) -> Stream:
    s = Stream()
    s.add("ConversationStarted", channel="chat", at=0)
    s.add("LegOpened", "c", channel="chat", at=1)
    s.add("IdentityVerified", "c", method="otp", level=2, subject="m", at=2)
    if csat_before_switch is not None:
        s.add("CSATRecorded", score=csat_before_switch, at=3)
    s.add("HandoffOffered", "c", handoff_id="h", at=10)
    s.add("HandoffAccepted", "c", handoff_id="h", at=10 + accept_after)
    s.add("LegOpened", "v", channel="webrtc", at=10 + accept_after + complete_after)
    s.add("IdentityVerified", "v", method="handoff_token", level=2, subject="m")
    s.add(
        "HandoffCompleted",
        "v",
        handoff_id="h",
        leg_id="v",
        first_utterance="Hello",
        at=10 + accept_after + complete_after,
    )
    if reverify:
        s.add("VerificationFailed", "v", method="kba", reason="wrong answer")
        s.add("IdentityVerified", "v", method="kba", level=2, subject="m")
    if resolved:
        s.add("ConversationResolved")
    if csat is not None:
        s.add("CSATRecorded", score=csat)
    return s


def offered_only(outcome: str) -> Stream:
    s = Stream()
    s.add("ConversationStarted", channel="chat")
    s.add("HandoffOffered", handoff_id="h")
    if outcome == "declined":
        s.add("HandoffDeclined", handoff_id="h", reason="busy")
    else:
        s.add("HandoffExpired", handoff_id="h")
    s.add("CSATRecorded", score=3)
    return s


def scenario() -> list[RecordedEvent]:
    """10 conversations, 4 switched, 1 of them re-verified after the switch."""
    streams = [
        chat_only(5),
        chat_only(4),
        chat_only(None, resolved=False),
        chat_only(2),
        offered_only("declined"),
        offered_only("expired"),
        switched(5, accept_after=2, complete_after=1),
        switched(4, accept_after=4, complete_after=3, csat_before_switch=1),
        switched(2, accept_after=6, complete_after=5, reverify=True),
        switched(None, accept_after=8, complete_after=7, resolved=False, csat_before_switch=2),
    ]
    return [e for s in streams for e in s.events]


def check_scenario(m: HandoffMetrics) -> None:
    assert m.conversations == 10
    assert m.switched_conversations == 4
    assert m.channel_switches == 4
    assert m.reverification_rate == 0.25
    assert m.reverified_after_switch == 1
    assert m.post_switch_resolution_rate == 0.75
    # With switch: 5, 4, 2 after the switch (the 4th only rated before it) → 11/3.
    assert m.csat_with_switch.count == 3
    assert m.csat_with_switch.mean == pytest.approx(11 / 3)
    # Without: 5, 4, 2 and the two offered-only conversations (3, 3) → 17/5.
    assert m.csat_without_switch.count == 5
    assert m.csat_without_switch.mean == pytest.approx(17 / 5)
    f = m.funnel
    assert (f.offered, f.accepted, f.completed, f.declined, f.expired) == (6, 4, 4, 1, 1)
    assert f.accept_rate == pytest.approx(4 / 6)
    assert f.complete_rate == 1.0
    accept = m.latency_seconds["offer_to_accept"]
    assert (accept.count, accept.p50, accept.p90, accept.max, accept.sum) == (4, 4, 8, 8, 20)
    complete = m.latency_seconds["accept_to_complete"]
    assert (complete.p50, complete.p99) == (3, 7)
    assert m.latency_seconds["offer_to_complete"].p50 == 7
