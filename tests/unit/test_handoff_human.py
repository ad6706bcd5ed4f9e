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
