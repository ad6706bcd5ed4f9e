"""Runs the scenario corpus (tests/corpus/*.yaml) through the real offline agent, a ledger
and the first-utterance generator, and scores each scenario: the first utterance carries
the listed facts, no agent text or first utterance holds a forbidden phrase, the agent never
sends the same reply twice in a row, and the voice-needed signal matches what is expected.
Shared by tests/unit/test_corpus.py and `python -m benchmarks.handoff`."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from threadline.agent.chat import ChatAgent
from threadline.agent.factory import build_agent
from threadline.agent.tools import ToolBackend
from threadline.handoff.first_utterance import OfflineUtterances
from threadline.handoff.settings import HandoffSettings
from threadline.ledger.envelope import NewEvent
from threadline.ledger.events import ConversationStarted, LegOpened
from threadline.ledger.store import Ledger
from threadline.projections.context import build_context

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "corpus"  # data, not code
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)
LEG = "leg_chat"
THRESHOLD = HandoffSettings().escalation_threshold


@dataclass(frozen=True, slots=True)
class Scenario:
    id: str
    domain: str
    turns: tuple[str, ...]
    facts: tuple[str, ...]
    must_not: tuple[str, ...]
    offer: bool


@dataclass(slots=True)
class Result:
    scenario: Scenario
    first_utterance: str
    replies: list[str]
    signalled: bool
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def load() -> list[Scenario]:
    out: list[Scenario] = []
    for path in sorted(CORPUS.glob("*.yaml")):
        raw: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))
        for item in raw:
            out.append(
                Scenario(
                    id=str(item["id"]),
                    domain=path.stem,
                    turns=tuple(item["turns"]),
                    facts=tuple(item.get("facts", ())),
                    must_not=tuple(item.get("must_not", ())),
                    offer=bool(item.get("offer", False)),
                )
            )
    return out


def run(scenario: Scenario, ledger: Ledger, tools: ToolBackend) -> Result:
    cid = scenario.id
    ledger.append(cid, NewEvent("ConversationStarted", ConversationStarted(channel="chat")))
    ledger.append(
        cid, NewEvent("LegOpened", LegOpened(channel="chat", transport_ref="widget"), leg_id=LEG)
    )
    chat = ChatAgent(ledger, build_agent(tools, clock=lambda: NOW))
    replies = [chat.visitor_turn(cid, t, leg_id=LEG).reply or "" for t in scenario.turns]
    events = list(ledger.read(cid))
    context = build_context(events)
    first = OfflineUtterances().generate(context, level=context.verification.level, reason=None)
    signalled = any(
        e.type == "EscalationSignalDetected" and float(getattr(e.data, "score", 0.0)) >= THRESHOLD
        for e in events
    )
    result = Result(scenario, first, replies, signalled)
    low = first.lower()
    result.failures += [f"fact {f!r} missing" for f in scenario.facts if f.lower() not in low]
    for phrase in scenario.must_not:
        for text in [first, *replies]:
            if phrase.lower() in text.lower():
                result.failures.append(f"forbidden {phrase!r} in {text[:80]!r}")
                break
    for a, b in itertools.pairwise(replies):
        if a == b:
            result.failures.append(f"repeated reply {a[:60]!r}")
    if signalled != scenario.offer:
        result.failures.append(f"signal {signalled} expected {scenario.offer}")
    return result


def precision_recall(results: list[Result]) -> tuple[float, float]:
    tp = sum(1 for r in results if r.signalled and r.scenario.offer)
    fp = sum(1 for r in results if r.signalled and not r.scenario.offer)
    fn = sum(1 for r in results if not r.signalled and r.scenario.offer)
    return (tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0)
