"""The language-model port: given the state of one turn, what does the agent do next?

A turn is a short loop (at most `MAX_STEPS`): the model either calls a tool, asks the
runtime to check an identity claim, or replies. The runtime (`threadline.agent.core`) executes
each action, records it as events, and shows the outcome to the model on the next step. The
offline deterministic model and the OpenAI-compatible one implement the same port, see the
same tools and speak with the same persona, on chat and on voice alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Protocol

from threadline.agent.tools import Member
from threadline.handoff.signals import Signal
from threadline.ledger.events import Channel
from threadline.projections.context_model import AgentContext

MAX_STEPS = 4


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    # Why this reply offers a person or a call ("out_of_scope"): the runtime records the
    # HandoffOffered that backs it, so the chat never promises what the ledger lacks.
    offer: str | None = None


@dataclass(frozen=True, slots=True)
class CallTool:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Verify:
    """Check a knowledge-based identity claim: member or policy number + date of birth."""

    identifier: str
    date_of_birth: str  # as given; the runtime parses it


Action = Reply | CallTool | Verify


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened when the runtime executed an action."""

    action: CallTool | Verify
    call_id: str | None = None
    result: Any = None
    error: str | None = None
    verified: bool | None = None  # for Verify


@dataclass(slots=True)
class TurnState:
    context: AgentContext  # the stream as of this turn (may already hold the turn itself)
    text: str  # what the visitor just said or typed
    channel: Channel
    turn_position: int | None  # where the visitor's turn sits in the stream, if recorded
    member: Member | None  # the verified member, if any
    signals: list[Signal]
    today: date
    steps: list[Outcome] = field(default_factory=list)
    verification_locked: bool = False
    # Pack vocabulary scores of this turn's texts (`agent.packs.choose`), reused by its
    # later steps; gone with the turn.
    pack_scores: dict[tuple[tuple[str, ...], str], int] = field(default_factory=dict)

    @property
    def earlier_visitor_turns(self) -> list[str]:
        cut = self.turn_position
        return [
            t.text
            for t in self.context.recent_turns
            if t.role == "visitor" and (cut is None or t.position < cut) and t.text != self.text
        ]


class LanguageModel(Protocol):
    name: str

    def step(self, state: TurnState) -> Action:
        """The next action for this turn. Must return a Reply once `len(state.steps)`
        reaches MAX_STEPS (the runtime enforces it anyway)."""
        ...


Kind = Literal["offline", "openai"]
