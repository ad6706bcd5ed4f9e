"""The event-store contract, run against every backend (memory, SQLite file, PostgreSQL)."""

from __future__ import annotations

import dataclasses
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from tests.support.ledgers import ledger, ledger_url_any, message, started  # noqa: F401
from threadline.ledger import audit, canonical, records
from threadline.ledger.envelope import NewEvent, RecordedEvent
from threadline.ledger.errors import (
    ConcurrencyConflictError,
    ConversationAlreadyStartedError,
    ConversationNotFoundError,
    IdempotencyConflictError,
    InvalidEventError,
    UnknownEventTypeError,
)
from threadline.ledger.events import MessagePosted, OpaqueData
from threadline.ledger.store import Ledger
from threadline.ledger.upcasting import _UPCASTERS, register_upcaster

pytestmark = pytest.mark.usefixtures("ledger_url_any")


def test_append_and_read_back(ledger: Ledger) -> None:  # noqa: F811
    first = ledger.append("c1", started())
    second = ledger.append("c1", message("hi"), expected_version=1)
    assert (first.position, second.position) == (1, 2)
    assert first.sequence < second.sequence
    assert not first.duplicate
    assert not second.duplicate
    events = ledger.read("c1")
    assert [e.position for e in events] == [1, 2]
    assert [e.event_id for e in events] == [first.event_id, second.event_id]
    assert [e.sequence for e in events] == [first.sequence, second.sequence]
    assert events[1].data == MessagePosted(role="visitor", text="hi")
    assert ledger.version("c1") == 2
    assert ledger.version("unknown") == 0
    assert ledger.read("unknown") == []


def test_envelope_fields_are_recorded(ledger: Ledger) -> None:  # noqa: F811
    occurred = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    ledger.append("c1", started(leg_id="leg-1", actor="widget", occurred_at=occurred))
    (event,) = ledger.read("c1")
    assert event.leg_id == "leg-1"
    assert event.actor == "widget"
    assert event.occurred_at == occurred
    assert event.recorded_at.tzinfo is not None
    assert event.schema_version == 1
    assert event.conversation_id == "c1"
    assert event.to_json()["data"] == {"channel": "chat", "tenant": "default", "visitor_ref": None}


def test_hash_chain_links_each_event_to_the_previous(ledger: Ledger) -> None:  # noqa: F811
    ledger.append_batch("c1", [started(), message("a"), message("b")])
    events = ledger.read("c1")
    assert events[0].prev_hash == canonical.GENESIS_HASH
    for prev, cur in itertools.pairwise(events):
        assert cur.prev_hash == prev.hash
    # The hash is the sha256 of the canonical stored envelope without `hash` and `sequence`
    # (stored: personal fields may be encrypted there, see threadline.ledger.shredding).
    (row,) = ledger.recorder.select_conversation("c1", gt=1, limit=1)
    body = canonical.loads(row.state)
    del body["hash"]
    assert canonical.sha256_hex(canonical.dumps(body)) == events[1].hash


def test_stale_expected_version_is_a_conflict_and_appends_nothing(ledger: Ledger) -> None:  # noqa: F811
    ledger.append("c1", started())
    ledger.append("c1", message("a"), expected_version=1)
    with pytest.raises(ConcurrencyConflictError) as info:
        ledger.append("c1", message("b"), expected_version=1)
    assert (info.value.expected, info.value.actual) == (1, 2)
    with pytest.raises(ConcurrencyConflictError):
        ledger.append("c1", message("c"), expected_version=5)
    with pytest.raises(ConcurrencyConflictError):
        ledger.append("c2", started(), expected_version=1)
    assert ledger.version("c1") == 2
    assert ledger.read("c2") == []


def test_expected_version_zero_creates_only_once(ledger: Ledger) -> None:  # noqa: F811
    ledger.append("c1", started(), expected_version=0)
    with pytest.raises(ConcurrencyConflictError):
        ledger.append("c1", started(), expected_version=0)


def test_repeat_event_id_returns_the_original_and_appends_nothing(ledger: Ledger) -> None:  # noqa: F811
    ledger.append("c1", started())
    event = message("once")
    original = ledger.append("c1", event)
    ledger.append("c1", message("later"))
    again = ledger.append("c1", event)
    stale = ledger.append("c1", event, expected_version=1)
    assert again.duplicate
    assert stale.duplicate
    for repeat in (again, stale):
        assert (repeat.position, repeat.sequence) == (original.position, original.sequence)
    assert [e.data.text for e in ledger.read("c1")[1:]] == ["once", "later"]  # type: ignore[attr-defined]
    # A retry with a fresh timestamp is still the same event.
    retry = NewEvent(event.type, event.data, event_id=event.event_id, occurred_at=_now())
    assert ledger.append("c1", retry).position == original.position


def test_repeat_of_the_first_event_is_not_a_second_start(ledger: Ledger) -> None:  # noqa: F811
    event = started()
    ledger.append("c1", event)
    assert ledger.append("c1", event).duplicate
    assert ledger.append("c1", event, expected_version=0).duplicate
    assert ledger.version("c1") == 1


def test_same_event_id_with_other_payload_is_an_error(ledger: Ledger) -> None:  # noqa: F811
    ledger.append("c1", started())
    ledger.append("c2", started())
    event = message("original")
    ledger.append("c1", event)
    changed = NewEvent("MessagePosted", {"role": "visitor", "text": "edited"}, event.event_id)
    with pytest.raises(IdempotencyConflictError, match="different payload"):
        ledger.append("c1", changed)
    with pytest.raises(IdempotencyConflictError, match="elsewhere") as clash:
        ledger.append("c2", event)
    assert "conversation c1" not in str(clash.value)  # it may be another tenant's
    other_actor = NewEvent(event.type, event.data, event.event_id, actor="someone")
    with pytest.raises(IdempotencyConflictError):
        ledger.append("c1", other_actor)
    assert ledger.version("c1") == 2
    assert ledger.version("c2") == 1


def test_conversation_must_start_with_conversation_started(ledger: Ledger) -> None:  # noqa: F811
    with pytest.raises(ConversationNotFoundError):
        ledger.append("c1", message())
    with pytest.raises(ConversationNotFoundError):
        ledger.append_batch("c1", [message(), started()])
    ledger.append("c1", started())
    with pytest.raises(ConversationAlreadyStartedError):
        ledger.append("c1", started())
    with pytest.raises(ConversationAlreadyStartedError):
        ledger.append_batch("c1", [message(), started()])
    assert ledger.version("c1") == 1


def test_batches_are_atomic(ledger: Ledger) -> None:  # noqa: F811
    results = ledger.append_batch("c1", [started(), message("a"), message("b")])
    assert [r.position for r in results] == [1, 2, 3]
    assert [r.sequence for r in results] == sorted({r.sequence for r in results})
    bad = NewEvent("MessagePosted", {"role": "robot", "text": "x"})
    with pytest.raises(InvalidEventError):
        ledger.append_batch("c1", [message("c"), bad])
    with pytest.raises(ConcurrencyConflictError):
        ledger.append_batch("c1", [message("d"), message("e")], expected_version=2)
    assert ledger.version("c1") == 3


def test_repeated_batch_is_a_duplicate_and_a_partial_repeat_is_an_error(ledger: Ledger) -> None:  # noqa: F811
    batch = [started(), message("a")]
    first = ledger.append_batch("c1", batch)
    again = ledger.append_batch("c1", batch, expected_version=0)
    assert [(r.position, r.sequence, r.duplicate) for r in again] == [
        (r.position, r.sequence, True) for r in first
    ]
    with pytest.raises(IdempotencyConflictError, match="part of this batch"):
        ledger.append_batch("c1", [batch[1], message("new")])
    assert ledger.version("c1") == 2


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"conversation_id": ""}, InvalidEventError),
        ({"conversation_id": "has space"}, InvalidEventError),
        ({"conversation_id": "x" * 129}, InvalidEventError),
        ({"event": NewEvent("NoSuchEvent", {})}, UnknownEventTypeError),
        ({"event": NewEvent("MessagePosted", {"role": "visitor"})}, InvalidEventError),
        (
            {"event": NewEvent("MessagePosted", {"role": "visitor", "text": "x", "y": 1})},
            InvalidEventError,
        ),
        ({"event": NewEvent("MessagePosted", ["not", "a", "dict"])}, InvalidEventError),  # type: ignore[arg-type]
        ({"event": message(occurred_at=datetime(2024, 1, 1))}, InvalidEventError),
        ({"event": message(leg_id="")}, InvalidEventError),
        ({"event": message(actor="a\nb")}, InvalidEventError),
        ({"expected_version": -1}, InvalidEventError),
        ({"expected_version": True}, InvalidEventError),
        ({"event": "not an event"}, InvalidEventError),
        (
            {
                "event": NewEvent(
                    "ToolCalled", {"call_id": "1", "name": "n", "arguments": {"x": float("nan")}}
                )
            },
            InvalidEventError,
        ),
    ],
)
def test_bad_input_is_rejected_and_appends_nothing(
    ledger: Ledger,  # noqa: F811
    kwargs: dict[str, Any],
    error: type[Exception],
) -> None:
    ledger.append("c1", started())
    args: dict[str, Any] = {"conversation_id": "c1", "event": message()} | kwargs
    with pytest.raises(error):
        ledger.append(**args)
    assert ledger.version("c1") == 1
    assert ledger.max_sequence() == 1


def test_batch_input_errors(ledger: Ledger) -> None:  # noqa: F811
    with pytest.raises(InvalidEventError, match="nothing"):
        ledger.append_batch("c1", [])
    event = started()
    with pytest.raises(InvalidEventError, match="twice"):
        ledger.append_batch("c1", [event, event])
    assert ledger.max_sequence() == 0


def test_read_ranges(ledger: Ledger) -> None:  # noqa: F811
    ledger.append_batch("c1", [started()] + [message(str(i)) for i in range(2, 8)])
    assert [e.position for e in ledger.read("c1", after=3)] == [4, 5, 6, 7]
    assert [e.position for e in ledger.read("c1", upto=3)] == [1, 2, 3]
    assert [e.position for e in ledger.read("c1", after=2, upto=5)] == [3, 4, 5]
    assert [e.position for e in ledger.read("c1", after=2, limit=2)] == [3, 4]
    assert ledger.read("c1", after=7) == []
    with pytest.raises(InvalidEventError):
        ledger.read("c1", after=-1)
    with pytest.raises(InvalidEventError):
        ledger.read("c1", limit=0)


def test_global_log_is_ordered_by_sequence(ledger: Ledger) -> None:  # noqa: F811
    assert ledger.max_sequence() == 0
    assert ledger.read_all() == []
    ledger.append("a", started())
    ledger.append("b", started())
    ledger.append("a", message("a2"))
    ledger.append("b", message("b2"))
    log = ledger.read_all()
    assert [(e.conversation_id, e.position) for e in log] == [
        ("a", 1),
        ("b", 1),
        ("a", 2),
        ("b", 2),
    ]
    sequences = [e.sequence for e in log]
    assert sequences == sorted(sequences)
    assert ledger.max_sequence() == sequences[-1]
    assert [e.sequence for e in ledger.read_all(after=sequences[1], limit=1)] == [sequences[2]]
    assert ledger.read_all(after=sequences[-1]) == []
    # The id-only read is the same log, without decoding a payload.
    assert ledger.read_all_ids() == [(e.sequence, e.conversation_id) for e in log]
    assert ledger.read_all_ids(sequences[1], 1) == [(sequences[2], "a")]
    assert ledger.read_all_ids(sequences[-1]) == []
    # The typed read: only events of the given types, and the cursor past every record read.
    wanted = [e for e in log if e.type == "ConversationStarted"]
    assert wanted
    assert ledger.read_all_of({"ConversationStarted"}) == (wanted, sequences[-1])
    assert ledger.read_all_of({"ConversationStarted"}, sequences[-1]) == ([], sequences[-1])
    assert ledger.read_all_of({"NoSuchType"}, 0, 2) == ([], sequences[1])
    # Data decoded for some types only: the same envelopes, the others' data left stored.
    partial = ledger.read_all(decode={"MessagePosted"})
    assert [e.data for e in partial] == [
        e.data if e.type == "MessagePosted" else records.UNDECODED for e in log
    ]
    assert [dataclasses.replace(e, data=records.UNDECODED) for e in partial] == [
        dataclasses.replace(e, data=records.UNDECODED) for e in log
    ]


def test_subscribers_get_events_after_commit(ledger: Ledger) -> None:  # noqa: F811
    seen: list[RecordedEvent] = []

    def listener(events: list[RecordedEvent]) -> None:
        # Called after commit: the events are readable.
        assert ledger.version(events[-1].conversation_id) >= events[-1].position
        seen.extend(events)

    def broken(events: list[RecordedEvent]) -> None:
        raise RuntimeError("listener bug")

    unsubscribe = ledger.subscribe(listener)
    ledger.subscribe(broken)
    event = started()
    ledger.append_batch("c1", [event, message("x")])
    ledger.append("c1", event)  # a duplicate is not a new event
    assert [e.position for e in seen] == [1, 2]
    assert seen == ledger.read("c1")
    unsubscribe()
    ledger.append("c1", message("y"))
    assert len(seen) == 2


def test_unknown_stored_type_reads_as_opaque_data(ledger: Ledger) -> None:  # noqa: F811
    ledger.append("c1", started())
    head = ledger.read("c1")[-1]
    body = {
        "event_id": str(uuid4()),
        "conversation_id": "c1",
        "position": 2,
        "type": "FutureEvent",
        "schema_version": 3,
        "occurred_at": head.occurred_at.isoformat(),
        "recorded_at": head.recorded_at.isoformat(),
        "leg_id": None,
        "actor": None,
        "data": {"anything": [1, 2]},
        "prev_hash": head.hash,
    }
    body["hash"] = canonical.sha256_hex(canonical.dumps(body))
    ledger.recorder.insert_events([StoredEvent("c1", 2, "FutureEvent", canonical.dumps(body))])
    future = ledger.read("c1")[-1]
    assert isinstance(future.data, OpaqueData)
    assert future.to_json()["data"] == {"anything": [1, 2]}
    assert ledger.append("c1", message()).position == 3


def test_old_schema_versions_are_upcast_on_read(ledger: Ledger) -> None:  # noqa: F811
    ledger.append("c1", started())
    head = ledger.read("c1")[-1]
    body = {
        "event_id": str(uuid4()),
        "conversation_id": "c1",
        "position": 2,
        "type": "MessagePosted",
        "schema_version": 0,
        "occurred_at": head.occurred_at.isoformat(),
        "recorded_at": head.recorded_at.isoformat(),
        "leg_id": None,
        "actor": None,
        "data": {"who": "visitor", "body": "old shape"},
        "prev_hash": head.hash,
    }
    body["hash"] = canonical.sha256_hex(canonical.dumps(body))
    ledger.recorder.insert_events([StoredEvent("c1", 2, "MessagePosted", canonical.dumps(body))])
    register_upcaster("MessagePosted", 0, lambda d: {"role": d["who"], "text": d["body"]})
    try:
        event = ledger.read("c1")[-1]
    finally:
        del _UPCASTERS[("MessagePosted", 0)]
    assert event.data == MessagePosted(role="visitor", text="old shape")
    assert event.schema_version == 1


def _now() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=1)


def test_audit_verifies_and_exports_every_backend(ledger: Ledger) -> None:  # noqa: F811
    ledger.append_batch("c1", [started(), message("a"), message("b")])
    ledger.append_batch("c2", [started(), message("c")])
    assert audit.verify_conversation(ledger, "c1") == 3
    assert audit.verify_all(ledger) == audit.AuditResult(conversations=2, events=5)
    lines = list(audit.export_lines(ledger, "c1")) + list(audit.export_lines(ledger, "c2"))
    assert audit.verify_lines(lines) == audit.AuditResult(conversations=2, events=5)
    assert [json.loads(line)["sequence"] for line in lines[:3]] == [
        e.sequence for e in ledger.read("c1")
    ]
