"""Helpers for the Kafka relay/consumer tests and benchmark: a realistic event load, and a
raw reader that returns every record of a topic (no group, so it sees duplicates too)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from threadline.ledger.envelope import NewEvent, RecordedEvent
from threadline.ledger.store import Ledger

# Consumer-group timing the Tansu broker needs (see harness/tansu.py).
GROUP_TIMING = {
    "consumer_max_poll_interval_ms": 5000,
    "consumer_session_timeout_ms": 6000,
    "consumer_heartbeat_interval_ms": 1000,
}


def conversation_events(i: int, n: int) -> list[NewEvent]:
    """`n` events of conversation number `i`: every third one switches to voice through a
    completed handoff, every fifth is re-verified, the rest chat; CSAT and resolution last."""
    out = [
        NewEvent("ConversationStarted", {"channel": "chat"}),
        NewEvent("LegOpened", {"channel": "chat"}, leg_id="c"),
        NewEvent("IdentityVerified", {"method": "otp", "level": 2, "subject": f"s{i}"}, leg_id="c"),
    ]
    if i % 3 == 0:
        out += [
            NewEvent("HandoffOffered", {"handoff_id": "h"}, leg_id="c"),
            NewEvent("HandoffAccepted", {"handoff_id": "h"}, leg_id="c"),
            NewEvent("LegOpened", {"channel": "webrtc"}, leg_id="v"),
            NewEvent(
                "HandoffCompleted",
                {"handoff_id": "h", "leg_id": "v", "first_utterance": "Hello again"},
                leg_id="v",
            ),
        ]
        if i % 5 == 0:
            out.append(
                NewEvent("VerificationFailed", {"method": "kba", "reason": "wrong"}, leg_id="v")
            )
    tail = [NewEvent("ConversationResolved", {}), NewEvent("CSATRecorded", {"score": 1 + i % 5})]
    while len(out) < n - len(tail):
        k = len(out)
        role = "visitor" if k % 2 else "agent"
        out.append(NewEvent("MessagePosted", {"role": role, "text": f"turn {k} of {i}"}))
    return (out + tail)[:n]


def seed(
    ledger: Ledger,
    conversations: int,
    per_conversation: int,
    *,
    chunk: int = 10,
    prefix: str = "conv",
    start: int = 0,
) -> None:
    """Appends round-robin in chunks, so conversations interleave in the global log."""
    streams = {
        f"{prefix}-{i:05d}": conversation_events(i, per_conversation)
        for i in range(start, start + conversations)
    }
    for offset in range(0, per_conversation, chunk):
        for cid, events in streams.items():
            part = events[offset : offset + chunk]
            if part:
                ledger.append_batch(cid, part, expected_version=offset)


def read_topic(bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0) -> list[Any]:
    """Every record on `topic` (all partitions, from the beginning) until at least
    `expected` were read and the end offsets are reached."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout_s
        records: list[Any] = []
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500, max_records=5000).values():
                records.extend(batch)
            ends = consumer.end_offsets(partitions)
            if len(records) >= expected and all(consumer.position(tp) >= ends[tp] for tp in ends):
                return records
        raise AssertionError(f"read {len(records)} of {expected} records within {timeout_s}s")
    finally:
        consumer.close()


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def by_conversation(events: list[RecordedEvent]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for e in events:
        out.setdefault(e.conversation_id, []).append(e.position)
    return out
