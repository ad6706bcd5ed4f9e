"""Packs per tenant (`THREADLINE_AGENT_TENANT_PACKS`): the conversation's tenant, from its
ConversationStarted event, decides which packs the offline model may choose from."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.support.tools import seeded_tools
from tests.unit.handoff.handoff_helpers import CHAT_LEG, add
from threadline.agent.chat import ChatAgent
from threadline.agent.factory import build_agent
from threadline.agent.sqltools.sql import SqlToolBackend
from threadline.app.settings import load_settings
from threadline.handoff.errors import ConfigurationError
from threadline.handoff.settings import HandoffSettings
from threadline.ledger.events import ConversationStarted, LegOpened
from threadline.ledger.store import Ledger, open_ledger

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TENANT_PACKS = "acme=retail,appliances;globex=insurance"
# A dishwasher owner who also says "covered", "policy" and "claim": on a deployment whose
# packs include insurance these words pull towards the insurance menu.
DISHWASHER = (
    "my dishwasher leaked and flooded the floor, is that covered by my policy?",
    "i want to make a claim for the damage",
    "so what now",
)
INSURANCE_WORDS = ("policy number", "member number", "member or policy", "date of birth", "claims")


@pytest.fixture
def tools() -> Iterator[SqlToolBackend]:
    with seeded_tools(NOW) as backend:
        yield backend


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    store = open_ledger("memory://")
    for cid, tenant in (("A", "acme"), ("G", "globex"), ("O", "other")):
        add(store, cid, ConversationStarted(channel="chat", tenant=tenant), None)
        add(store, cid, LegOpened(channel="chat", transport_ref="widget"))
    yield store
    store.close()


def chat(ledger: Ledger, tools: SqlToolBackend, tenant_packs: str = TENANT_PACKS) -> ChatAgent:
    settings = HandoffSettings(agent_tenant_packs=tenant_packs)
    return ChatAgent(ledger, build_agent(tools, settings, clock=lambda: NOW))


def replies(agent: ChatAgent, cid: str, texts: tuple[str, ...]) -> list[str]:
    return [agent.visitor_turn(cid, t, leg_id=CHAT_LEG).reply or "" for t in texts]


def insurance_like(reply: str) -> bool:
    return any(w in reply.lower() for w in INSURANCE_WORDS)


def test_the_deployment_packs_alone_answer_this_chat_with_insurance(
    ledger: Ledger, tools: SqlToolBackend
) -> None:
    # The control: without a tenant entry the same chat does reach the insurance pack, so
    # the next test would fail if the tenant's packs were not used.
    said = replies(chat(ledger, tools, tenant_packs=""), "A", DISHWASHER)
    assert any(insurance_like(r) for r in said)


def test_acme_never_gets_an_insurance_reply(ledger: Ledger, tools: SqlToolBackend) -> None:
    said = replies(chat(ledger, tools), "A", DISHWASHER)
    assert not any(insurance_like(r) for r in said), said
    assert "engineer" in said[0]  # the appliances pack answered


def test_globex_gets_insurance(ledger: Ledger, tools: SqlToolBackend) -> None:
    agent = chat(ledger, tools)
    [reply] = replies(agent, "G", ("Hi, I have a question about my January claim",))
    assert "date of birth" in reply
    assert "policy number" in reply
    # globex has no appliances pack: a dishwasher is general, never an engineer booking.
    [other] = replies(agent, "G", ("also my dishwasher DW-88120 is broken",))
    assert "engineer" not in other


def test_a_tenant_without_an_entry_uses_the_deployment_packs(
    ledger: Ledger, tools: SqlToolBackend
) -> None:
    [reply] = replies(chat(ledger, tools), "O", ("my dishwasher DW-88120 is leaking",))
    assert "engineer" in reply


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("acme=retail,bogus", "no agent pack named 'bogus'"),
        ("acme", "expected tenant=pack"),
        ("acme=retail;acme=insurance", "listed twice"),
        ("acme=", "bad pack name"),
        ("acme=retail,retail", "lists a pack twice"),
        ("acme=retail;", "expected tenant=pack"),
    ],
)
def test_a_bad_tenant_pack_setting_is_refused_in_one_line(value: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"THREADLINE_AGENT_TENANT_PACKS": value})
    text = str(caught.value)
    assert "THREADLINE_AGENT_TENANT_PACKS" in text
    assert message in text
    assert "\n" not in text


def test_an_unknown_deployment_pack_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="no agent pack named 'nope'"):
        load_settings({"THREADLINE_AGENT_PACKS": "retail,nope"})


def test_the_setting_parses() -> None:
    settings = load_settings(
        {"THREADLINE_AGENT_TENANT_PACKS": " acme = retail , appliances ;globex=insurance"}
    )
    assert settings.handoff.packs_by_tenant() == {
        "acme": ("retail", "appliances"),
        "globex": ("insurance",),
    }
