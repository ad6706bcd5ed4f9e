"""Domain packs as data: every shipped pack validates, a tenant's pack list decides what the
agent understands, and out of domain the agent explains, offers, and never loops."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from tests.support.tools import seeded_tools
from tests.unit.handoff.handoff_helpers import CHAT_LEG, start_chat
from threadline.agent import packs
from threadline.agent.chat import ChatAgent
from threadline.agent.core import OFFER_SENTENCE, Agent
from threadline.agent.factory import build_agent
from threadline.agent.lm import OfflineLM
from threadline.agent.offline import OfflineModel
from threadline.agent.sqltools.sql import SqlToolBackend
from threadline.handoff.restate import reported
from threadline.handoff.settings import HandoffSettings
from threadline.ledger.store import Ledger, open_ledger
from threadline.projections.context import build_context

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def tools() -> Iterator[SqlToolBackend]:
    with seeded_tools(NOW) as backend:
        yield backend


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    store = open_ledger("memory://")
    start_chat(store, "A")
    yield store
    store.close()


def chat_with(ledger: Ledger, tools: SqlToolBackend, pack_list: str | None = None) -> ChatAgent:
    settings = HandoffSettings() if pack_list is None else HandoffSettings(agent_packs=pack_list)
    return ChatAgent(ledger, build_agent(tools, settings, clock=lambda: NOW))


def say(chat: ChatAgent, text: str) -> tuple[str, str | None]:
    turn = chat.visitor_turn("A", text, leg_id=CHAT_LEG)
    return turn.reply or "", turn.handoff_offered


def test_every_shipped_pack_validates() -> None:
    names = packs.available()
    assert {"insurance", "retail", "general", "appliances", "banking"} <= set(names)
    for name in names:
        assert packs.load(name).name == name


def test_a_bad_pack_is_refused() -> None:
    with pytest.raises(packs.PackError):
        packs.load("no-such-pack")
    with pytest.raises(ValidationError):
        packs.Pack.model_validate({"name": "x", "topic": "t", "can": "a", "cannot": "b",
                                   "vocabulary": ["(unclosed"]})  # fmt: skip
    with pytest.raises(ValidationError):
        HandoffSettings(agent_packs="Retail; DROP")


def test_the_conversation_picks_its_pack() -> None:
    model = OfflineModel()
    pick = lambda text: packs.choose(model.packs, text, []).name  # noqa: E731
    assert pick("my dishwasher DW-88120 has been leaking since Tuesday") == "appliances"
    assert pick("change the delivery address on order 4417") == "retail"
    assert pick("question about my January claim") == "insurance"
    assert pick("the neighbours at flat 4B have been drilling every night") == "general"
    assert pick("hi") == "insurance"  # nothing said yet: the tenant's home pack


def test_dishwasher_owner_never_gets_insurance_questions(
    ledger: Ledger, tools: SqlToolBackend
) -> None:
    chat = chat_with(ledger, tools)
    replies = [say(chat, t)[0] for t in ("my dishwasher DW-88120 is leaking", "hello??", "??")]
    for reply in replies:
        assert "policy" not in reply.lower()
        assert "claims" not in reply.lower()
    assert all(a != b for a, b in itertools.pairwise(replies))
    assert "can't book an engineer" in replies[0]


def test_a_tenant_without_the_pack_answers_from_general(
    ledger: Ledger, tools: SqlToolBackend
) -> None:
    reply, offered = say(chat_with(ledger, tools, "insurance"), "my dishwasher is leaking badly")
    assert "policy" not in reply.lower()
    assert "engineer" not in reply
    assert offered is not None


def test_out_of_domain_offer_is_recorded_once(ledger: Ledger, tools: SqlToolBackend) -> None:
    chat = chat_with(ledger, tools)
    reply, offered = say(chat, "cancel my gym membership before it renews on the 15th")
    assert offered is not None
    assert reply.count(OFFER_SENTENCE) == 1
    offers = [e for e in ledger.read("A") if e.type == "HandoffOffered"]
    assert [e.data.reason for e in offers] == ["out_of_scope"]  # type: ignore[attr-defined]
    reply, again = say(chat, "thanks, how long does that take?")
    assert again is None
    assert not reply.startswith("You're welcome")


def test_asking_for_a_call_records_the_offer(ledger: Ledger, tools: SqlToolBackend) -> None:
    chat = chat_with(ledger, tools)
    say(chat, "Hi, I have a question about my January claim")
    reply, offered = say(chat, "can we do this on a call instead")
    assert offered is not None
    assert "call" in reply
    assert reply.count("voice call") == 1
    assert any(e.type == "HandoffOffered" for e in ledger.read("A"))


def test_pack_model_is_the_agent_default(tools: SqlToolBackend) -> None:
    agent = build_agent(tools)
    assert isinstance(agent, Agent)
    assert isinstance(agent.model, OfflineLM)
    assert isinstance(agent.model.steps, OfflineModel)
    assert agent.model.steps.packs[0].name == "insurance"
    assert agent.model.steps.packs[-1].name == "general"


def test_a_handover_does_not_answer_the_question(ledger: Ledger, tools: SqlToolBackend) -> None:
    chat = chat_with(ledger, tools)
    say(chat, "is my fridge still under warranty? serial FR-20931")
    context = build_context(ledger.read("A"))
    assert [q.answered for q in context.questions] == [False]


@pytest.mark.parametrize(
    ("question", "said"),
    [
        (
            "is my fridge still under warranty?",
            ("asked", "whether your fridge is still under warranty"),
        ),
        ("how long does that take?", ("asked", "how long that takes")),
        (
            "cancel my gym membership by the 15th",
            ("asked_to", "cancel your gym membership by the 15th"),
        ),
        # No rule reports it: quoted ("You asked: is the Silver plan cheaper?"), never
        # restated as a statement ("You said is the Silver plan cheaper").
        ("is the Silver plan cheaper?", ("quoted", "is the Silver plan cheaper")),
    ],
)
def test_questions_are_reported_in_the_second_person(question: str, said: tuple[str, str]) -> None:
    assert reported(question) == said
