"""The port's fallback logic with a fake provider (no network): what is used and what is
recorded when the provider gives no usable output, and that offline records nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.handoff.handoff_helpers import NOW, january_claim_chat
from threadline.agent.events import register_events
from threadline.agent.lm import FallbackLM, ModelUnavailableError, OfflineLM, build_lm
from threadline.agent.model import Action, TurnState
from threadline.handoff.first_utterance import OfflineUtterances
from threadline.ledger.events import HandoffChannel
from threadline.ledger.store import Ledger, open_ledger
from threadline.projections.context import build_context
from threadline.projections.context_model import AgentContext


class Broken:
    name = "fake"
    model: str | None = "fake-1"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.calls: list[str] = []

    def step(self, state: TurnState) -> Action:
        raise ModelUnavailableError(self.reason)

    def first_utterance(
        self,
        context: AgentContext,
        *,
        level: int,
        reason: str | None,
        channel: HandoffChannel | None = None,
        inbound: bool = False,
    ) -> str:
        self.calls.append("first_utterance")
        raise ModelUnavailableError(self.reason)

    def handoff_summary(self, context: AgentContext, *, reason: str | None) -> str:
        self.calls.append("summary")
        raise ModelUnavailableError(self.reason)


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    register_events()
    store = open_ledger("memory://")
    january_claim_chat(store, "A")
    yield store
    store.close()


def test_a_failing_provider_gives_the_offline_output_and_a_fallback_event(ledger: Ledger) -> None:
    broken = Broken("timeout")
    lm = FallbackLM(broken, OfflineLM(), clock=lambda: NOW)
    ctx = build_context(ledger.read("A"))
    made = lm.compose(ctx, level=2, reason=None, channel="whatsapp")
    assert made.text == OfflineLM().first_utterance(ctx, level=2, reason=None, channel="whatsapp")
    ((kind, event),) = made.events
    assert kind == "ModelFallbackUsed"
    assert event.model_dump() == {
        "use": "first_utterance",
        "provider": "fake",
        "model": "fake-1",
        "reason": "timeout",
        "fallback": "offline",
        "at": NOW,
    }
    recorded = lm.summarize(list(ledger.read("A")), "explicit_request")
    assert [k for k, _ in recorded] == ["ModelFallbackUsed", "HandoffSummaryWritten"]
    assert recorded[0][1].model_dump()["use"] == "summary"
    assert recorded[1][1].model_dump()["generator"] == "offline"
    assert "January claim" in recorded[1][1].model_dump()["text"]
    assert broken.calls == ["first_utterance", "summary"]


def test_offline_records_no_fallback_and_is_deterministic(ledger: Ledger) -> None:
    lm = build_lm(clock=lambda: NOW)
    ctx = build_context(ledger.read("A"))
    first = lm.compose(ctx, level=2, reason=None)
    assert first.events == ()
    assert first == lm.compose(build_context(ledger.read("A")), level=2, reason=None)
    (only,) = lm.summarize(list(ledger.read("A")), "explicit_request")
    assert only[0] == "HandoffSummaryWritten"
    assert "Verified (level 2)." in only[1].model_dump()["text"]
    assert "MBR-100234" not in only[1].model_dump()["text"]


def test_a_plain_generator_still_composes(ledger: Ledger) -> None:
    ctx = build_context(ledger.read("A"))
    made = OfflineUtterances().compose(ctx, level=2, reason=None)
    assert made.events == ()
    assert made.text == OfflineUtterances().generate(ctx, level=2, reason=None)
