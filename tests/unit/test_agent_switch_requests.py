"""Asking for a call is answered by the call: the agent backs every promise with an offer
(a standing one included), and the first utterance never restates the request to switch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.support.tools import seeded_tools
from tests.unit.handoff.handoff_helpers import CHAT_LEG, start_chat
from threadline.agent.chat import ChatAgent
from threadline.agent.core import OFFER_BUTTON
from threadline.agent.factory import build_agent
from threadline.agent.lm import build_lm
from threadline.handoff.restate import only_asks_to_switch
from threadline.ledger.store import Ledger, open_ledger
from threadline.projections.context import build_context

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BIKE = (
    "hi, I rented a bike in lisbon last week, booking BK-7781",
    "the deposit of $150 still hasnt come back to my card, why is it taking so long?",
    "can we do this on a call instead",
)


@pytest.fixture
def chat() -> Iterator[tuple[Ledger, ChatAgent]]:
    store = open_ledger("memory://")
    start_chat(store, "A")
    with seeded_tools(NOW) as tools:
        yield store, ChatAgent(store, build_agent(tools, clock=lambda: NOW))
    store.close()


@pytest.mark.parametrize(
    ("sentence", "only_switch"),
    [
        ("can we do this on a call instead", True),
        ("Can I talk to a person please?", True),
        ("honestly can someone just call me", True),
        ("could we carry on over the phone?", True),
        ("order 4417 never came, can someone call me", False),
        ("I was on a call with your colleague about order 4417 yesterday", False),
        ("my dishwasher DW-88120 is leaking", False),
    ],
)
def test_a_sentence_that_only_asks_to_switch_is_recognised(
    sentence: str, only_switch: bool
) -> None:
    assert only_asks_to_switch(sentence) is only_switch


def test_asking_again_points_to_the_standing_offer(chat: tuple[Ledger, ChatAgent]) -> None:
    store, agent = chat
    turns = [agent.visitor_turn("A", text, leg_id=CHAT_LEG) for text in BIKE]
    assert turns[0].handoff_offered is not None  # out of scope: offered on the first turn
    assert turns[2].handoff_offered is None  # ... and still standing, not offered twice
    assert OFFER_BUTTON in (turns[2].reply or "")
    offers = [e for e in store.read("A") if e.type == "HandoffOffered"]
    assert len(offers) == 1


def test_the_first_utterance_restates_the_request_not_the_switch(
    chat: tuple[Ledger, ChatAgent],
) -> None:
    store, agent = chat
    for text in BIKE:
        agent.visitor_turn("A", text, leg_id=CHAT_LEG)
    said = build_lm().offline.first_utterance(build_context(store.read("A")), level=0, reason=None)
    assert "BK-7781" in said
    assert "$150" in said
    assert "call instead" not in said
    assert "on a call" not in said.split("switching to voice", 1)[1]
