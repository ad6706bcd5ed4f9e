"""Hypothesis: any sequence of valid appends (single or batched, with correct, stale or no
expected versions, interleaved with retries of earlier event ids) replays to exactly the
accepted sequence; duplicates never create a second event; positions are gapless."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.ledgers import ledger, ledger_url_any, started  # noqa: F401
from threadline.ledger import audit
from threadline.ledger.envelope import AppendResult, NewEvent
from threadline.ledger.errors import ConcurrencyConflictError
from threadline.ledger.events import parse_data
from threadline.ledger.store import Ledger

roles = st.sampled_from(["visitor", "agent", "human", "system"])
text = st.text(min_size=1, max_size=40)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
payloads = st.one_of(
    st.builds(lambda r, t: ("MessagePosted", {"role": r, "text": t}), roles, text),
    st.builds(
        lambda r, t, a, b, c: (
            "UtteranceTranscribed",
            {"role": r, "text": t, "start_ms": a, "end_ms": a + b, "confidence": c},
        ),
        roles,
        text,
        st.integers(0, 10**7),
        st.integers(0, 10**5),
        st.floats(0, 1),
    ),
    st.builds(
        lambda n, args: ("ToolCalled", {"call_id": str(uuid4()), "name": n, "arguments": args}),
        text,
        st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    ),
    st.builds(lambda t, i: ("AgentSpoke", {"text": t, "interrupted": i}), text, st.booleans()),
    st.builds(
        lambda ch: ("LegOpened", {"channel": ch}), st.sampled_from(["chat", "webrtc", "sms"])
    ),
)
new_events = st.builds(
    lambda p, leg, actor: NewEvent(p[0], p[1], leg_id=leg, actor=actor),
    payloads,
    st.none() | st.sampled_from(["leg-a", "leg-b"]),
    st.none() | st.sampled_from(["visitor", "agent"]),
)
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("append"),
            st.lists(new_events, min_size=1, max_size=4),
            st.sampled_from(["none", "current", "stale"]),
        ),
        st.tuples(
            st.just("retry"),
            st.integers(min_value=0),
            st.sampled_from(["none", "current", "stale"]),
        ),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_appends_replay_exactly(ledger: Ledger, ops: list[tuple[str, Any, str]]) -> None:  # noqa: F811
    conversation_id = f"p-{uuid4().hex}"  # one store per test, one conversation per example
    accepted: list[NewEvent] = [started()]
    originals: dict[str, AppendResult] = {}
    first = ledger.append(conversation_id, accepted[0], expected_version=0)
    originals[str(accepted[0].event_id)] = first

    def expected_version(mode: str) -> int | None:
        return {"none": None, "current": len(accepted), "stale": len(accepted) - 1}[mode]

    for kind, arg, mode in ops:
        version = expected_version(mode)
        if kind == "retry":
            event = accepted[arg % len(accepted)]
            result = ledger.append(conversation_id, event, expected_version=version)
            assert result.duplicate
            original = originals[str(event.event_id)]
            assert (result.position, result.sequence) == (original.position, original.sequence)
            continue
        try:
            results = ledger.append_batch(conversation_id, arg, expected_version=version)
        except ConcurrencyConflictError:
            assert mode == "stale"
            continue
        assert mode != "stale"
        assert [r.position for r in results] == list(
            range(len(accepted) + 1, len(accepted) + 1 + len(arg))
        )
        assert not any(r.duplicate for r in results)
        accepted.extend(arg)
        originals.update({str(r.event_id): r for r in results})

    replayed = ledger.read(conversation_id)
    assert [e.position for e in replayed] == list(range(1, len(accepted) + 1))
    assert [e.event_id for e in replayed] == [a.event_id for a in accepted]
    assert [e.type for e in replayed] == [a.type for a in accepted]
    assert [e.data.model_dump(mode="json") for e in replayed[1:]] == [
        parse_data(a.type, a.data).model_dump(mode="json") for a in accepted[1:]
    ]
    assert [(e.leg_id, e.actor) for e in replayed] == [(a.leg_id, a.actor) for a in accepted]
    assert [e.sequence for e in replayed] == [originals[str(a.event_id)].sequence for a in accepted]
    assert ledger.version(conversation_id) == len(accepted)
    assert audit.verify_conversation(ledger, conversation_id) == len(accepted)
    in_log = [
        e
        for e in ledger.read_all(after=first.sequence - 1, limit=10_000)
        if e.conversation_id == conversation_id
    ]
    assert [e.event_id for e in in_log] == [a.event_id for a in accepted]
