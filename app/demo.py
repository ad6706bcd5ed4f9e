"""The seed scenario, end to end: chat about a January claim, identity verification, a tool
lookup, a compliance signal and the switch-to-voice offer, the voice leg (first utterance
from the replayed chat, no re-verification, one voice turn answered), back to chat; then the
unified transcript and the handoff metrics.

The voice leg is behind `VoiceLeg`, so how the visitor's speech reaches the agent is one
swap: `ScriptedVoiceLeg` (default) records the visitor's lines as transcripts directly;
an audio driver (espeak-ng speech through the real STT, from the voice package) implements
the same `run` and is chosen with `threadline demo --voice NAME` via `VOICE_LEGS`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from threadline.agent.chat import ChatAgent
from threadline.agent.core import Agent
from threadline.agent.sqltools.seed import DEMO_MEMBER
from threadline.agent.sqltools.sql import SqlToolBackend
from threadline.agent.voice import VoiceAgent
from threadline.handoff.service import HandoffService, VoiceLegGrant
from threadline.ledger.envelope import NewEvent, RecordedEvent
from threadline.ledger.events import (
    AgentSpoke,
    ConversationResolved,
    ConversationStarted,
    CSATRecorded,
    LegClosed,
    LegOpened,
    UtteranceTranscribed,
)
from threadline.ledger.store import Ledger
from threadline.projections.metrics import HandoffMetrics, build_metrics
from threadline.projections.transcript import build_transcript, render_text

CHAT_BEFORE = (
    "Hi, I have a question about my January claim.",
    f"My date of birth is 12 March 1984 and my member number is {DEMO_MEMBER.member_id}.",
    "My husband usually deals with the hospital. Do you need my HIPAA authorization so he "
    "can talk to you about the claim?",
)
VOICE_LINES = (
    "I authorize my husband David to discuss my claim with you.",
    "When will my January claim be paid?",
)
CHAT_AFTER = ("Thanks. Can you book me a call with an advisor on Monday?",)


class VoiceLeg(Protocol):
    """Drives an opened voice leg: speaks the first utterance, carries the visitor's lines
    to the agent and its replies back, and closes the leg. Records UtteranceTranscribed and
    AgentSpoke itself (the agent records only its own steps)."""

    name: str

    def run(
        self, ledger: Ledger, voice: VoiceAgent, grant: VoiceLegGrant, lines: Sequence[str]
    ) -> None: ...


class ScriptedVoiceLeg:
    """No audio: the visitor's lines are recorded as exact transcripts (confidence 1.0) and
    the agent's words as spoken in full. Marked as such in the leg's transport ref."""

    name = "scripted"
    transport_ref = "demo:scripted-voice (no audio)"

    def run(
        self, ledger: Ledger, voice: VoiceAgent, grant: VoiceLegGrant, lines: Sequence[str]
    ) -> None:
        cid, leg = grant.conversation_id, grant.leg_id
        clock_ms = 0

        def spoke(text: str) -> None:
            ledger.append(cid, NewEvent("AgentSpoke", AgentSpoke(text=text), leg_id=leg))

        spoke(grant.first_utterance)
        for line in lines:
            start = clock_ms
            clock_ms += 400 + 60 * len(line.split())
            heard = UtteranceTranscribed(
                role="visitor", text=line, start_ms=start, end_ms=clock_ms, confidence=1.0
            )
            posted = ledger.append(cid, NewEvent("UtteranceTranscribed", heard, leg_id=leg))
            turn = voice.turn(
                cid, leg, line, turn_key=str(posted.event_id), turn_position=posted.position
            )
            spoke(turn.reply)
        ledger.append(
            cid, NewEvent("LegClosed", LegClosed(reason="visitor went back to chat"), leg_id=leg)
        )


VOICE_LEGS: dict[str, Callable[[], VoiceLeg]] = {"scripted": ScriptedVoiceLeg}


@dataclass
class DemoResult:
    conversation_id: str
    transcript: str
    first_utterance: str
    metrics: HandoffMetrics
    store_metrics: HandoffMetrics
    problems: list[str] = field(default_factory=list)


def run_demo(
    ledger: Ledger,
    tools: SqlToolBackend,
    agent: Agent,
    handoffs: HandoffService,
    voice_leg: VoiceLeg | None = None,
    conversation_id: str | None = None,
) -> DemoResult:
    voice_leg = voice_leg or ScriptedVoiceLeg()
    cid = conversation_id or f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    chat_leg = f"leg_chat_{uuid.uuid4().hex[:12]}"
    ledger.append_batch(
        cid,
        [
            NewEvent(
                "ConversationStarted", ConversationStarted(channel="chat", visitor_ref="demo")
            ),
            NewEvent("LegOpened", LegOpened(channel="chat", transport_ref="demo"), leg_id=chat_leg),
        ],
        expected_version=0,
    )
    chat = ChatAgent(ledger, agent)
    offered: str | None = None
    for line in CHAT_BEFORE:
        turn = chat.visitor_turn(cid, line, leg_id=chat_leg)
        offered = turn.handoff_offered or offered
    problems: list[str] = []
    if offered is None:
        problems.append("the agent did not offer a switch to voice")
    # The visitor clicks "Switch to voice" (accepting the offer, or asking unprompted).
    ticket = handoffs.request_handoff(cid, "webrtc", handoff_id=offered, leg_id=chat_leg)
    transport = getattr(voice_leg, "transport_ref", f"demo:{voice_leg.name}")
    grant = handoffs.redeem(ticket.token, transport, conversation_id=cid, channel="webrtc")
    voice_leg.run(ledger, VoiceAgent(ledger, agent), grant, VOICE_LINES)
    for line in CHAT_AFTER:
        chat.visitor_turn(cid, line, leg_id=chat_leg)
    ledger.append_batch(
        cid,
        [
            NewEvent("CSATRecorded", CSATRecorded(score=5), leg_id=chat_leg, actor="visitor"),
            NewEvent("ConversationResolved", ConversationResolved(), leg_id=chat_leg),
        ],
    )
    events = ledger.read(cid)
    result = DemoResult(
        conversation_id=cid,
        transcript=render_text(build_transcript(events)),
        first_utterance=grant.first_utterance,
        metrics=build_metrics(events),
        store_metrics=build_metrics(_global_log(ledger)),
        problems=problems,
    )
    result.problems += check(result, events, grant)
    return result


def check(result: DemoResult, events: list[RecordedEvent], grant: VoiceLegGrant) -> list[str]:
    """What the scenario promises, checked on the recorded stream."""
    problems = []
    if "January claim" not in result.first_utterance:
        problems.append("the first utterance does not mention the January claim")
    on_voice = [e for e in events if e.leg_id == grant.leg_id]
    if not any(
        e.type == "IdentityVerified" and e.data.model_dump().get("method") == "handoff_token"
        for e in on_voice
    ):
        problems.append("the voice leg did not inherit the chat's verification")
    if any(e.type in ("IdentityClaimed", "VerificationFailed") for e in on_voice):
        problems.append("the visitor was challenged again on the voice leg")
    if result.metrics.reverification_rate not in (0, 0.0):
        problems.append(f"re-verification rate is {result.metrics.reverification_rate}")
    if not any(e.type == "ToolCalled" for e in events):
        problems.append("no tool was called")
    return problems


def _global_log(ledger: Ledger) -> list[RecordedEvent]:
    out: list[RecordedEvent] = []
    after = 0
    while True:
        batch = ledger.read_all(after=after, limit=500)
        if not batch:
            return out
        out.extend(batch)
        after = batch[-1].sequence


def format_metrics(title: str, m: HandoffMetrics) -> str:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0%}"

    latency = m.latency_seconds.get("offer_to_complete")
    offer_to_complete = (
        f"{latency.p50:.2f} s" if latency is not None and latency.p50 is not None else "n/a"
    )
    return "\n".join(
        [
            title,
            f"  conversations {m.conversations}, switched {m.switched_conversations}, "
            f"channel switches {m.channel_switches}",
            f"  handoffs offered {m.funnel.offered}, accepted {m.funnel.accepted}, "
            f"completed {m.funnel.completed}, expired {m.funnel.expired}, "
            f"declined {m.funnel.declined}",
            f"  re-verification rate {pct(m.reverification_rate)} "
            f"({m.reverified_after_switch} of {m.switched_conversations} switched)",
            f"  post-switch resolution rate {pct(m.post_switch_resolution_rate)}; "
            f"CSAT after switch {m.csat_with_switch.mean or 'n/a'}",
            f"  offer → completed (p50) {offer_to_complete}",
        ]
    )
