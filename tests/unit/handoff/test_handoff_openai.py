"""The OpenAI-compatible implementation of the language-model port (`agent/openai_lm.py`),
through the real openai SDK against a scripted Chat Completions server on loopback
(`harness/chat_completions.py`): tool calling, replies, the first utterance's checks."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from harness.chat_completions import ChatCompletionsServer as FakeOpenAI
from harness.chat_completions import chat_completions_server, text, tool_call
from tests.unit.handoff.handoff_helpers import CHAT_LEG, NOW, january_claim_chat, start_chat
from threadline.agent.chat import ChatAgent
from threadline.agent.core import Agent
from threadline.agent.events import register_events
from threadline.agent.lm import FallbackLM, ModelUnavailableError, OfflineLM
from threadline.agent.offline import OfflineModel
from threadline.agent.openai_lm import OpenAILM
from threadline.agent.sqltools.sql import SqlToolBackend
from threadline.ledger.store import Ledger, open_ledger
from threadline.projections.context import build_context


@pytest.fixture
def endpoint() -> Iterator[FakeOpenAI]:
    register_events()
    with chat_completions_server() as fake:
        yield fake


def OpenAIModel(client: openai.OpenAI) -> OpenAILM:  # noqa: N802 - reads like the old class
    return OpenAILM(client=client)


@pytest.fixture
def client(endpoint: FakeOpenAI) -> Iterator[openai.OpenAI]:
    c = openai.OpenAI(base_url=endpoint.base_url, api_key="test-key", max_retries=0)
    yield c
    c.close()


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    store = open_ledger("memory://")
    yield store
    store.close()


def test_function_calling_turn_is_recorded_like_the_offline_one(
    endpoint: FakeOpenAI, client: openai.OpenAI, tools: SqlToolBackend, ledger: Ledger
) -> None:
    start_chat(ledger, "A")
    endpoint.script = [
        tool_call(
            "verify_identity",
            {"member_or_policy_number": "POL-558812", "date_of_birth": "1984-03-12"},
            "call_v",
        ),
        tool_call("lookup", {"kind": "claim", "month": 1}, "call_l"),
        text("Your January claim CLM-4821 is pending review."),
    ]
    agent = Agent(OpenAIModel(client=client), tools, fallback=OfflineModel(), clock=lambda: NOW)
    turn = ChatAgent(ledger, agent).visitor_turn(
        "A", "January claim please; POL-558812, born 1984-03-12", leg_id=CHAT_LEG
    )
    assert turn.reply == "Your January claim CLM-4821 is pending review."
    assert [e.type for e in ledger.read("A")][2:] == [
        "MessagePosted",
        "IdentityClaimed",
        "IdentityVerified",
        "IdentityVerified",  # the phone on file
        "ToolCalled",
        "ToolResulted",
        "MessagePosted",
    ]
    # The model saw the tool schemas, then the verification outcome, then the lookup result.
    first, second, third = endpoint.requests
    names = {t["function"]["name"] for t in first["tools"]}
    assert names == {"lookup", "schedule", "quote", "verify_identity"}
    assert second["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "step-0",
        "content": '{"verified": true}',
    }
    assert "CLM-4821" in third["messages"][-1]["content"]
    # Once verified, verify_identity is no longer offered.
    assert "verify_identity" not in {t["function"]["name"] for t in third["tools"]}


def test_provider_failure_falls_back_to_the_offline_model(
    endpoint: FakeOpenAI, client: openai.OpenAI, tools: SqlToolBackend, ledger: Ledger
) -> None:
    start_chat(ledger, "A")
    endpoint.script = [500]
    agent = Agent(OpenAIModel(client=client), tools, fallback=OfflineModel(), clock=lambda: NOW)
    turn = ChatAgent(ledger, agent).visitor_turn("A", "Hello", leg_id=CHAT_LEG)
    assert "Ava" in (turn.reply or "")
    types = [e.type for e in ledger.read("A")]
    assert types[-1] == "MessagePosted"
    fallback = next(e for e in ledger.read("A") if e.type == "ModelFallbackUsed")
    assert fallback.data.model_dump()["use"] == "reply"
    assert fallback.data.model_dump()["reason"] == "http_500"
    assert fallback.data.model_dump()["provider"] == "openai"


def test_model_tool_errors_reach_the_model_and_are_recorded(
    endpoint: FakeOpenAI, client: openai.OpenAI, tools: SqlToolBackend, ledger: Ledger
) -> None:
    start_chat(ledger, "A")
    endpoint.script = [
        tool_call("quote", {"plan": "Diamond"}),
        text("Sorry, we have no Diamond plan."),
    ]
    agent = Agent(OpenAIModel(client=client), tools, clock=lambda: NOW)
    ChatAgent(ledger, agent).visitor_turn("A", "price the Diamond plan", leg_id=CHAT_LEG)
    result = next(e for e in ledger.read("A") if e.type == "ToolResulted")
    assert "no plan called" in (result.data.model_dump()["error"] or "")
    assert "no plan called" in endpoint.requests[1]["messages"][-1]["content"]


def test_first_utterance_provider_is_checked_and_falls_back(
    endpoint: FakeOpenAI, client: openai.OpenAI, ledger: Ledger
) -> None:
    january_claim_chat(ledger, "A")
    ctx = build_context(ledger.read("A"))
    provider = OpenAILM(client=client)
    gen = FallbackLM(provider, OfflineLM(), clock=lambda: NOW)
    endpoint.script = [
        text("Hi again! I see you asked about your January claim CLM-4821; let me pull it up."),
        text("Hello MBR-100234, how can I help?"),  # reads out a member number: refused
        text("Hello, how can I help?"),  # does not name the topic: refused
        503,
    ]
    made = gen.compose(ctx, level=2, reason=None)
    assert made.text.startswith("Hi again!")
    assert made.events == ()
    offline = gen.offline.first_utterance(ctx, level=2, reason=None)
    reasons = []
    for _ in range(3):
        made = gen.compose(ctx, level=2, reason=None)
        assert made.text == offline
        ((kind, event),) = made.events
        assert kind == "ModelFallbackUsed"
        reasons.append(event.model_dump()["reason"])
    assert reasons == ["invalid_output", "invalid_output", "http_503"]
    summary = endpoint.requests[0]["messages"][-1]["content"]
    assert "January claim" in summary
    assert json.loads(summary)["channel"] == "webrtc"
    assert provider.summary(ctx, 2, None, "pstn", True)["channel"] == "pstn"
    assert gen.offline.first_utterance(ctx, level=2, reason=None, channel="sms").startswith(
        "Thanks for continuing by text."
    )
    assert "MBR-100234" not in summary
    assert "1984" not in summary
    # The provider alone raises; only the port's fallback turns that into offline output.
    endpoint.script = [500]
    with pytest.raises(ModelUnavailableError):
        provider.first_utterance(ctx, level=2, reason=None)
