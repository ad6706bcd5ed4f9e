"""The one language-model port: every use of a model goes through it.

Three uses, one implementation chosen by `THREADLINE_LLM_*` (`threadline.agent.settings`):

- `step` — the chat and voice agent's next action in a turn (reply, tool call, identity
  check); the runtime (`threadline.agent.core`) executes it and records the events;
- `first_utterance` — the first message on the new leg of a handoff, on every channel
  (WebRTC, PSTN, SMS, WhatsApp, email); `HandoffService` (redeem, or at acceptance for a
  voice leg) calls `FallbackLM.compose`, which returns it with any fallback event;
- `handoff_summary` — the short summary an operator reads when the visitor asks for a
  person (`HumanDesk`), recorded as `HandoffSummaryWritten`.

The input is always the agent-context projection of the replayed stream. Implementations:
`OfflineLM` (default; the grounded deterministic generator, no network) and
`threadline.agent.openai_lm.OpenAILM` (any Chat Completions server). A provider signals
failure by raising `ModelUnavailableError` with a machine-readable reason; `FallbackLM`
then uses the offline output and returns a `ModelFallbackUsed` event to record beside it,
so a failure is never silent and the output is never guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from threadline.agent.events import (
    HandoffSummaryWritten,
    ModelFallbackUsed,
    ModelUse,
    fallback_event,
)
from threadline.agent.model import Action, TurnState
from threadline.agent.offline import OfflineModel
from threadline.agent.settings import LanguageModelSettings
from threadline.handoff.errors import AgentError
from threadline.handoff.first_utterance import OfflineUtterances, Utterance
from threadline.handoff.human import OPERATOR_CALL, OPERATOR_CALL_OPENING, asks_for_person
from threadline.handoff.restate import restate
from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.events import EventData, HandoffChannel
from threadline.projections.context import build_context
from threadline.projections.context_model import AgentContext

Clock = Callable[[], datetime]
SUMMARY_MAX_CHARS = 600


class ModelUnavailableError(AgentError):
    """The provider gave no usable output; `reason` says why (timeout, http_503, …)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(
            f"the language model failed: {reason}" + (f" ({detail})" if detail else "")
        )
        self.reason = reason


class LanguageModelPort(Protocol):
    name: str  # "offline", "openai": recorded as the generator/provider
    model: str | None  # the provider's model id, if any

    def step(self, state: TurnState) -> Action:
        """The agent's next action in this turn (see `threadline.agent.model`)."""
        ...

    def first_utterance(
        self,
        context: AgentContext,
        *,
        level: int,
        reason: str | None,
        channel: HandoffChannel | None = None,
        inbound: bool = False,
    ) -> str:
        """The first message on the new leg (see `handoff.first_utterance`)."""
        ...

    def handoff_summary(self, context: AgentContext, *, reason: str | None) -> str:
        """A few lines for the operator taking over: what was asked, what is open."""
        ...


class OfflineLM:
    """The grounded offline generator behind the same port: the offline agent model, the
    restating first-utterance generator and a summary from the same restatement."""

    name = "offline"
    model: str | None = None

    def __init__(
        self, steps: OfflineModel | None = None, utterances: OfflineUtterances | None = None
    ) -> None:
        self.steps = steps or OfflineModel()
        self.utterances = utterances or OfflineUtterances()

    def step(self, state: TurnState) -> Action:
        return self.steps.step(state)

    def first_utterance(
        self,
        context: AgentContext,
        *,
        level: int,
        reason: str | None,
        channel: HandoffChannel | None = None,
        inbound: bool = False,
    ) -> str:
        return self.utterances.generate(
            context, level=level, reason=reason, channel=channel, inbound=inbound
        )

    def handoff_summary(self, context: AgentContext, *, reason: str | None) -> str:
        told = restate(context)
        parts: list[str] = []
        if context.topic is not None:
            parts.append(f"Topic: {context.topic.phrase}.")
        if told.asked_to:
            parts.append("Wants to " + "; ".join(told.asked_to) + ".")
        if told.said:
            parts.append("Said " + "; ".join(told.said) + ".")
        # "can I talk to a person" is why the operator is here, not a question left open.
        # Quoted ones too: the questions no rule reports ("is the museum open on Sundays?").
        asked_open = [*told.open_questions, *(q.rstrip("?") for q in told.quoted)]
        still_open = [q for q in asked_open if not asks_for_person(q)]
        if still_open:
            parts.append("Open: " + "; ".join(still_open) + ".")
        else:
            asked = [q.text for q in context.open_questions if not asks_for_person(q.text)]
            if asked:
                parts.append("Open: " + " / ".join(asked[-2:]))
        if not parts:
            visitor = [t.text for t in context.recent_turns if t.role == "visitor"][-1:]
            if visitor:
                parts.append(f'Last said: "{visitor[0]}"')
        level = context.verification.level
        parts.append(f"Verified (level {level})." if level > 0 else "Not verified.")
        if reason:
            parts.append(f"Asked for a person ({reason}).")
        return _clip(" ".join(parts))


@dataclass(frozen=True, slots=True)
class FallbackLM:
    """`primary` with `offline` behind it. Agent replies switch model inside the runtime
    (`Agent` records the fallback); the first utterance and the summary switch here."""

    primary: LanguageModelPort
    offline: OfflineLM
    clock: Clock

    @property
    def name(self) -> str:
        return self.primary.name

    def fallback_event(self, use: ModelUse, exc: ModelUnavailableError) -> ModelFallbackUsed:
        return fallback_event(self.primary, use, exc, self.clock())

    def first_utterance(
        self,
        context: AgentContext,
        *,
        level: int,
        reason: str | None,
        channel: HandoffChannel | None = None,
        inbound: bool = False,
    ) -> str:
        return self.compose(
            context, level=level, reason=reason, channel=channel, inbound=inbound
        ).text

    def compose(
        self,
        context: AgentContext,
        *,
        level: int,
        reason: str | None,
        channel: HandoffChannel | None = None,
        inbound: bool = False,
    ) -> Utterance:
        if reason == OPERATOR_CALL:
            # A person called the visitor: the AI only says who is joining, never its own
            # restatement (it stays silent while the person holds the conversation).
            return Utterance(OPERATOR_CALL_OPENING)
        try:
            text = self.primary.first_utterance(
                context, level=level, reason=reason, channel=channel, inbound=inbound
            )
            return Utterance(text)
        except ModelUnavailableError as exc:
            text = self.offline.first_utterance(
                context, level=level, reason=reason, channel=channel, inbound=inbound
            )
            event = self.fallback_event("first_utterance", exc)
            return Utterance(text, (("ModelFallbackUsed", event),))

    def summarize(
        self, events: Sequence[RecordedEvent], reason: str | None
    ) -> tuple[tuple[str, EventData], ...]:
        """The events recording the operator summary of this conversation (for `HumanDesk`)."""
        context = build_context(events)
        out: list[tuple[str, EventData]] = []
        try:
            text, by = self.primary.handoff_summary(context, reason=reason), self.primary.name
        except ModelUnavailableError as exc:
            text, by = self.offline.handoff_summary(context, reason=reason), self.offline.name
            out.append(("ModelFallbackUsed", self.fallback_event("summary", exc)))
        written = HandoffSummaryWritten(text=_clip(text), generator=by)
        return (*out, ("HandoffSummaryWritten", written))


def _clip(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= SUMMARY_MAX_CHARS:
        return text
    return text[: SUMMARY_MAX_CHARS - 1].rsplit(" ", 1)[0] + "…"


def build_lm(
    settings: LanguageModelSettings | None = None,
    clock: Clock | None = None,
    packs: Sequence[str] | None = None,
    tenant_packs: Mapping[str, Sequence[str]] | None = None,
) -> FallbackLM:
    """The process's one model, from the one settings section: every use switches together.
    `packs` are the offline agent's domain packs (`THREADLINE_AGENT_PACKS`), `tenant_packs`
    the per-tenant overrides (`THREADLINE_AGENT_TENANT_PACKS`)."""
    settings = settings or LanguageModelSettings()
    offline = OfflineLM(OfflineModel(packs, tenant_packs))
    primary: LanguageModelPort = offline
    if settings.provider == "openai":
        from threadline.agent.openai_lm import OpenAILM

        primary = OpenAILM(settings)
    return FallbackLM(primary, offline, clock or (lambda: datetime.now(UTC)))
