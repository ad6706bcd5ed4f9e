"""The chat turn path with a person available or not (offline agent, real ledger, real SQLite
tool tables): nobody online, the visitor is offered a callback and books it through the
scheduling tool; with an operator holding the conversation the AI records the visitor's
words and says nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.tools import seeded_tools
from tests.unit.handoff.handoff_helpers import CHAT_LEG, NOW
from threadline.agent.chat import ChatAgent
from threadline.agent.factory import build_agent
from threadline.handoff.human import HumanDesk
from threadline.ledger.envelope import NewEvent
from threadline.ledger.events import OperatorJoined
from threadline.ledger.store import Ledger
from threadline.projections.human import QueueIndex


class Online:
    def __init__(self, n: int) -> None:
        self.n = n

    def available_count(self, tenant: str | None) -> int:
        return self.n


def chat_with(ledger: Ledger, online: int) -> Iterator[ChatAgent]:
    with seeded_tools(NOW) as tools:
        desk = HumanDesk(QueueIndex(ledger), Online(online), clock=lambda: NOW)
        yield ChatAgent(ledger, build_agent(tools, clock=lambda: NOW), desk)


@pytest.fixture
def nobody(ledger: Ledger) -> Iterator[ChatAgent]:
    yield from chat_with(ledger, 0)


@pytest.fixture
def someone(ledger: Ledger) -> Iterator[ChatAgent]:
    yield from chat_with(ledger, 1)


def say(chat: ChatAgent, text: str) -> str | None:
    return chat.visitor_turn("A", text, leg_id=CHAT_LEG).reply


def test_nobody_online_callback_offered_and_booked(nobody: ChatAgent, ledger: Ledger) -> None:
    say(nobody, "Hi, I have a question about my January claim")
    say(nobody, "My date of birth is 1984-03-12 and my member number is MBR-100234")
    offered = say(nobody, "Can I speak to a person please?")
    assert offered is not None
    assert offered.startswith(HumanDesk.nobody_online())
    assert [e.type for e in ledger.read("A")].count("HumanRequested") == 1
    assert "next free times" in (say(nobody, "book a callback") or "")
    booked = say(nobody, "Monday please, book it")
    assert "Monday 23 November at 09:00" in (booked or "")
    results = [e for e in ledger.read("A") if e.type == "ToolResulted"]
    assert any("APT-" in str(e.data.model_dump()["result"]) for e in results)


def test_operator_holds_the_ai_is_silent(someone: ChatAgent, ledger: Ledger) -> None:
    asked = say(someone, "real human please")
    assert asked is not None
    assert "number 1 in the queue" in asked
    ledger.append("A", NewEvent("OperatorJoined", OperatorJoined(operator="alice", joined_at=NOW)))
    before = ledger.version("A")
    assert say(someone, "are you there?") is None
    after = ledger.read("A", after=before)
    assert [(e.type, e.data.model_dump().get("role")) for e in after] == [
        ("MessagePosted", "visitor")
    ]
