"""Asking for a person (handoff/human.py) and who holds a conversation (projections/human.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from threadline.handoff.human import HumanDesk, asks_for_person
from threadline.ledger.envelope import NewEvent
from threadline.ledger.events import (
    ConversationStarted,
    LegOpened,
    MessagePosted,
    OperatorJoined,
    OperatorLeft,
)
from threadline.ledger.store import open_ledger
from threadline.projections.human import QueueIndex, fold_human

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "Can I speak to a person please?",
        "real human please",
        "agent!",
        "I want to talk to someone",
        "put me through to a manager",
        "Operator?",
        "is this a human?",
        "connect me to customer service",
    ],
)
def test_asks_for_person(text: str) -> None:
    assert asks_for_person(text)


@pytest.mark.parametrize(
    "text",
    ["what is my claim status", "call me back tomorrow", "my agent number is 12", "thanks"],
)
def test_not_a_request_for_a_person(text: str) -> None:
    assert not asks_for_person(text)


class Online:
    def __init__(self, n: int) -> None:
        self.n = n

    def available_count(self, tenant: str | None) -> int:
        return self.n


def test_desk_queues_holds_and_recaps() -> None:
    ledger = open_ledger("memory://")
    ledger.append_batch(
        "c1",
        [
            NewEvent("ConversationStarted", ConversationStarted(channel="chat")),
            NewEvent("LegOpened", LegOpened(channel="chat"), leg_id="l1"),
            NewEvent("MessagePosted", MessagePosted(role="visitor", text="agent please")),
        ],
        0,
    )
    desk = HumanDesk(QueueIndex(ledger), Online(2), clock=lambda: NOW)
    asked = desk.intercept(ledger.read("c1"), "agent please")
    assert asked is not None
    assert asked.reply is not None
    assert "number 1 in the queue" in asked.reply
    assert [t for t, _ in asked.events] == ["HumanRequested"]
    ledger.append_batch("c1", asked.new_events(), 3)
    assert QueueIndex(ledger).position_of("c1") == 1
    ledger.append("c1", NewEvent("OperatorJoined", OperatorJoined(operator="alice", joined_at=NOW)))
    held = desk.intercept(ledger.read("c1"), "hello?")
    assert held is not None
    assert held.reply is None  # the AI stays silent
    assert desk.queue.waiting() == []
    ledger.append("c1", NewEvent("MessagePosted", MessagePosted(role="operator", text="Done.")))
    ledger.append("c1", NewEvent("OperatorLeft", OperatorLeft(operator="alice", left_at=NOW)))
    state = fold_human(ledger.read("c1"))
    assert state.holder is None
    assert not state.waiting
    assert desk.intercept(ledger.read("c1"), "ok thanks") is None
    assert desk.recap(ledger.read("c1")) == 'I\'m back with you. alice noted: "Done.".'


def test_nobody_online_offers_a_callback() -> None:
    ledger = open_ledger("memory://")
    ledger.append_batch(
        "c2",
        [
            NewEvent("ConversationStarted", ConversationStarted(channel="chat")),
            NewEvent("LegOpened", LegOpened(channel="chat")),
        ],
        0,
    )
    asked = HumanDesk(QueueIndex(ledger), Online(0)).intercept(ledger.read("c2"), "human")
    assert asked is not None
    assert asked.reply == HumanDesk.nobody_online()
    assert [t for t, _ in asked.events] == ["HumanRequested"]


def test_human_metrics_time_to_human_abandonment_and_resolver() -> None:
    from datetime import timedelta

    from threadline.ledger.events import (
        ConversationResolved,
        CSATRecorded,
        HumanRequested,
        IdentityVerified,
        LegClosed,
    )
    from threadline.projections.human_metrics import HumanMetrics

    ledger = open_ledger("memory://")

    def start(cid: str) -> None:
        ledger.append_batch(
            cid,
            [
                NewEvent("ConversationStarted", ConversationStarted(channel="chat")),
                NewEvent("LegOpened", LegOpened(channel="chat")),
            ],
            0,
        )

    def add(cid: str, *data: object) -> None:
        for d in data:
            ledger.append(cid, NewEvent(type(d).__name__, d))  # type: ignore[arg-type]

    verified = IdentityVerified(method="kba", level=2, subject="MBR-1")
    for cid, wait in (("p1", 30), ("p2", 90)):
        start(cid)
        add(
            cid,
            verified,
            HumanRequested(reason="explicit_request", requested_at=NOW),
            OperatorJoined(operator="alice", joined_at=NOW + timedelta(seconds=wait)),
            ConversationResolved(),
            CSATRecorded(score=5),
        )
    start("gone")
    add("gone", HumanRequested(reason="explicit_request", requested_at=NOW), LegClosed(reason="x"))
    start("ai")
    add("ai", ConversationResolved(), CSATRecorded(score=3))
    start("again")
    add(
        "again",
        verified,
        HumanRequested(reason="explicit_request", requested_at=NOW),
        OperatorJoined(operator="bob", joined_at=NOW),
        IdentityVerified(method="kba", level=2, subject="MBR-1"),  # asked again: a defect
    )
    m = HumanMetrics(ledger).summary()
    assert m["requests"] == 4
    assert m["time_to_human_seconds"]["p50"] == 30
    assert m["time_to_human_seconds"]["p95"] == 90
    assert m["abandoned_while_queued"] == 1
    assert m["abandonment_rate"] == 0.25
    assert m["reverified_after_transfer"] == 1
    assert m["taken_over"] == 3
    assert m["by_resolver"]["person"]["resolved"] == 2
    assert m["by_resolver"]["person"]["csat_mean"] == 5
    assert m["by_resolver"]["ai"] == {
        "conversations": 2,
        "resolved": 1,
        "resolution_rate": 0.5,
        "csat_mean": 3,
        "csat_count": 1,
    }
