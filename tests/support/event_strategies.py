"""Hypothesis strategies for valid conversation streams (for projection properties)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

from tests.support.streams import Stream
from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.events import OpaqueData

TEXTS = [
    "Hi, I have a question about my January claim.",
    "My claim number is CLM-48213, why was only $120 paid on 15 January 2024?",
    "ok thanks",
    "Let me check that for you.",
    "Your claim was partly paid because the deductible of $250 applied.",
    "I'm on the Gold Plus plan, policy #POL-99812. Can you call me?",
    "My name is Jane Doe",
    "Where is order 55120?",
]
CHANNELS = ["chat", "webrtc", "sms", "whatsapp", "pstn"]
LEGS = ["l1", "l2", "l3"]
HANDOFFS = ["h1", "h2"]
ROLES = ["visitor", "agent", "human", "system"]

# One step: (event type, leg or None, payload) — payloads valid for their type.
step = st.one_of(
    st.tuples(
        st.just("LegOpened"),
        st.sampled_from(LEGS),
        st.builds(dict, channel=st.sampled_from(CHANNELS)),
    ),
    st.tuples(st.just("LegClosed"), st.sampled_from(LEGS), st.just({"reason": "done"})),
    st.tuples(
        st.just("MessagePosted"),
        st.sampled_from([None, *LEGS]),
        st.builds(dict, role=st.sampled_from(ROLES), text=st.sampled_from(TEXTS)),
    ),
    st.tuples(
        st.just("UtteranceTranscribed"),
        st.sampled_from(LEGS),
        st.builds(
            dict,
            role=st.sampled_from(ROLES),
            text=st.sampled_from(TEXTS),
            start_ms=st.just(0),
            end_ms=st.just(500),
            confidence=st.just(0.9),
        ),
    ),
    st.tuples(
        st.just("AgentSpoke"),
        st.sampled_from(LEGS),
        st.builds(
            dict,
            text=st.sampled_from(TEXTS),
            interrupted=st.booleans(),
            spoken_text=st.sampled_from([None, "I see you"]),
        ),
    ),
    st.tuples(
        st.just("IdentityVerified"),
        st.sampled_from([None, *LEGS]),
        st.builds(
            dict,
            method=st.sampled_from(["otp", "kba", "handoff_token"]),
            level=st.integers(1, 3),
            subject=st.just("m1"),
        ),
    ),
    st.tuples(
        st.just("VerificationFailed"),
        st.sampled_from([None, *LEGS]),
        st.builds(dict, method=st.sampled_from(["otp", "handoff_token"]), reason=st.just("no")),
    ),
    st.tuples(
        st.just("IdentityClaimed"), st.none(), st.just({"method": "cookie", "subject": "m1"})
    ),
    st.tuples(
        st.just("ToolCalled"),
        st.none(),
        st.builds(dict, call_id=st.sampled_from(["t1", "t2"]), name=st.just("lookup")),
    ),
    st.tuples(
        st.just("ToolResulted"),
        st.none(),
        st.builds(
            dict,
            call_id=st.sampled_from(["t1", "t2"]),
            result=st.integers(0, 3),
            error=st.sampled_from([None, "x"]),
        ),
    ),
    st.tuples(
        st.just("EscalationSignalDetected"),
        st.none(),
        st.builds(
            dict, signal=st.just("frustration_spike"), score=st.floats(0, 1), evidence=st.just("!!")
        ),
    ),
    st.tuples(
        st.just("HandoffOffered"), st.none(), st.builds(dict, handoff_id=st.sampled_from(HANDOFFS))
    ),
    st.tuples(
        st.just("HandoffAccepted"), st.none(), st.builds(dict, handoff_id=st.sampled_from(HANDOFFS))
    ),
    st.tuples(
        st.just("HandoffCompleted"),
        st.sampled_from(LEGS),
        st.builds(
            dict,
            handoff_id=st.sampled_from(HANDOFFS),
            leg_id=st.sampled_from(LEGS),
            first_utterance=st.just("Hi"),
        ),
    ),
    st.tuples(
        st.just("HandoffExpired"), st.none(), st.builds(dict, handoff_id=st.sampled_from(HANDOFFS))
    ),
    st.tuples(
        st.just("HandoffDeclined"), st.none(), st.builds(dict, handoff_id=st.sampled_from(HANDOFFS))
    ),
    st.tuples(st.just("CSATRecorded"), st.none(), st.builds(dict, score=st.integers(1, 5))),
    st.tuples(st.just("ConversationResolved"), st.none(), st.just({})),
    st.tuples(st.just("SubjectErased"), st.none(), st.just({"subject": "m1"})),
    st.tuples(st.just("FromTheFuture"), st.none(), st.just({"anything": 1})),
)


def build(
    steps: list[tuple[str, str | None, dict[str, Any]]],
    first_channel: str = "chat",
    *,
    conversation_id: str | None = None,
    sequences: Iterator[int] | None = None,
) -> Stream:
    kw: dict[str, Any] = {"sequences": sequences}
    if conversation_id is not None:
        kw["conversation_id"] = conversation_id
    s = Stream(**kw)
    s.add("ConversationStarted", channel=first_channel)
    for i, (type_, leg, data) in enumerate(steps):
        at = float(len(s.events) + 1 + i)
        if type_ == "FromTheFuture":
            s.add(type_, leg, at=at, data=OpaqueData.model_validate(data))
        else:
            s.add(type_, leg, at=at, **data)
    return s


conversation = st.lists(step, max_size=30)


@st.composite
def global_log(draw: st.DrawFn, max_conversations: int = 6) -> list[RecordedEvent]:
    """Several conversations appended interleaved, numbered like the global log."""
    plans = draw(st.lists(conversation, min_size=1, max_size=max_conversations))
    channels = draw(st.lists(st.sampled_from(CHANNELS), min_size=len(plans), max_size=len(plans)))
    # Interleave: each step appends the next event of one conversation, chosen by hypothesis.
    order = draw(st.permutations([i for i, p in enumerate(plans) for _ in range(len(p) + 1)]))
    sequence = itertools.count(1)
    cursors = [0] * len(plans)
    live = [Stream(conversation_id=f"conv-{i}", sequences=sequence) for i in range(len(plans))]
    for i in order:
        k = cursors[i]
        cursors[i] += 1
        if k == 0:
            live[i].add("ConversationStarted", channel=channels[i], at=0.0)
            continue
        type_, leg, data = plans[i][k - 1]
        at = float(k)
        if type_ == "FromTheFuture":
            live[i].add(type_, leg, at=at, data=OpaqueData.model_validate(data))
        else:
            live[i].add(type_, leg, at=at, **data)
    return sorted((e for s in live for e in s.events), key=lambda e: e.sequence)
