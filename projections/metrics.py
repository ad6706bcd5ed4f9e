"""Handoff and channel-switch metrics across conversations, as a pure fold over the global log.

Per conversation the fold keeps a few `ConversationFacts`, per handoff `HandoffFacts`; the
cross-conversation numbers are the sum of each fact's `contribution`, kept as `Totals`. A
read model (`projections.views`) stores exactly these three things and updates the totals by
contribution(new) − contribution(old), so reading the metrics costs the same however many
conversations there are, and rebuild-from-zero, incremental and in-memory folds share one
definition.

Definitions (documented in docs/projections.md):
- a *channel switch* is a leg opening on a channel other than the one the conversation was
  on (its first channel, then the channel of the last leg opened);
- a conversation is *switched* once it has had a switch; CSAT "with switch" is its last CSAT
  recorded after the first switch, "without switch" the last CSAT of a never-switched one;
- *post-switch resolution rate*: switched conversations resolved after a switch / switched;
- *re-verification rate*: switched conversations with a re-verification (as defined in
  `threadline.projections.identity`) after a switch / switched;
- the handoff funnel counts handoffs that reached each stage; latencies are between the
  `occurred_at` of the offer, acceptance and completion events;
- voice timing comes from what the leg recorded, not from the handoff events: *click → first
  audio* is acceptance → `first_audio_at` of the first AgentSpoke on the leg the handoff
  completed; *turn latency* is a visitor utterance's `ended_at` → the next agent utterance's
  `first_audio_at`. A voice leg that closed before any agent audio left the server counts as
  a *silent* leg (a failure), never as a latency.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from pydantic import BaseModel, ConfigDict

from threadline.ledger import events as ev
from threadline.ledger.envelope import RecordedEvent
from threadline.projections.identity import is_reverification

QUANTILES = (0.5, 0.9, 0.95, 0.99)
TRANSITIONS = ("offer_to_accept", "accept_to_complete", "offer_to_complete")
VOICE_TIMINGS = ("click_to_first_audio", "turn")
_MAX_TURNS = 200  # turn latencies kept per leg: bounded facts, still a fair sample


@dataclass(frozen=True, slots=True)
class ConversationFacts:
    last_position: int = 0
    channel: str | None = None
    switches: int = 0
    level: int = 0
    reverifications: int = 0
    reverified_after_switch: bool = False
    csat: int | None = None
    csat_after_switch: int | None = None
    resolved: bool = False
    resolved_after_switch: bool = False
    # The handoff whose voice leg is live (its leg id), and when the visitor last stopped
    # speaking on it and no agent audio has answered yet (epoch seconds).
    voice_handoff: str | None = None
    voice_leg: str | None = None
    speech_ended_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConversationFacts:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True, slots=True)
class HandoffFacts:
    channel: str = "webrtc"
    offered_at: float | None = None
    accepted_at: float | None = None
    completed_at: float | None = None
    expired: bool = False
    declined: bool = False
    first_audio_at: float | None = None
    silent: bool = False  # its voice leg closed before any agent audio went out
    turn_latencies: tuple[float, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HandoffFacts:
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        if "turn_latencies" in values:
            values["turn_latencies"] = tuple(values["turn_latencies"])
        return cls(**values)

    def click_to_first_audio(self) -> float | None:
        if self.accepted_at is None or self.first_audio_at is None:
            return None
        return max(0.0, self.first_audio_at - self.accepted_at)

    def latency(self, transition: str) -> float | None:
        start, end = {
            "offer_to_accept": (self.offered_at, self.accepted_at),
            "accept_to_complete": (self.accepted_at, self.completed_at),
            "offer_to_complete": (self.offered_at, self.completed_at),
        }[transition]
        if start is None or end is None:
            return None
        return max(0.0, end - start)


@dataclass(slots=True)
class Totals:
    conversations: int = 0
    switched_conversations: int = 0
    channel_switches: int = 0
    csat_with_switch_sum: int = 0
    csat_with_switch_count: int = 0
    csat_without_switch_sum: int = 0
    csat_without_switch_count: int = 0
    resolved_conversations: int = 0
    resolved_after_switch: int = 0
    reverified_conversations: int = 0
    reverified_after_switch: int = 0
    handoffs_offered: int = 0
    handoffs_accepted: int = 0
    handoffs_completed: int = 0
    handoffs_expired: int = 0
    handoffs_declined: int = 0
    voice_legs_silent: int = 0
    events: int = 0

    def add(self, other: Mapping[str, int], sign: int = 1) -> None:
        for name, value in other.items():
            setattr(self, name, getattr(self, name) + sign * value)

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Totals:
        return cls(**{f.name: int(data.get(f.name, 0)) for f in fields(cls)})


def conversation_contribution(f: ConversationFacts) -> dict[str, int]:
    switched = f.switches > 0
    return {
        "conversations": 1,
        "switched_conversations": int(switched),
        "channel_switches": f.switches,
        "csat_with_switch_sum": (f.csat_after_switch or 0) if switched else 0,
        "csat_with_switch_count": int(switched and f.csat_after_switch is not None),
        "csat_without_switch_sum": (f.csat or 0) if not switched else 0,
        "csat_without_switch_count": int(not switched and f.csat is not None),
        "resolved_conversations": int(f.resolved),
        "resolved_after_switch": int(f.resolved_after_switch),
        "reverified_conversations": int(f.reverifications > 0),
        "reverified_after_switch": int(f.reverified_after_switch),
    }


def handoff_contribution(h: HandoffFacts) -> dict[str, int]:
    return {
        "handoffs_offered": int(h.offered_at is not None),
        "handoffs_accepted": int(h.accepted_at is not None),
        "handoffs_completed": int(h.completed_at is not None),
        "handoffs_expired": int(h.expired),
        "handoffs_declined": int(h.declined),
        "voice_legs_silent": int(h.silent),
    }


def fold_conversation(f: ConversationFacts, e: RecordedEvent) -> ConversationFacts:
    """The facts after `e`; unchanged (the same object) for events that do not matter."""
    d = e.data
    if isinstance(d, ev.ConversationStarted) and e.type == "ConversationStarted":
        return replace(f, channel=f.channel or d.channel)
    if isinstance(d, ev.LegOpened) and e.type == "LegOpened":
        switched = f.channel is not None and d.channel != f.channel
        return replace(f, channel=d.channel, switches=f.switches + int(switched))
    if isinstance(d, ev.IdentityVerified | ev.VerificationFailed) and e.type in (
        "IdentityVerified",
        "VerificationFailed",
    ):
        level = max(f.level, d.level) if isinstance(d, ev.IdentityVerified) else f.level
        if not is_reverification(f.level, d):
            return replace(f, level=level) if level != f.level else f
        return replace(
            f,
            level=level,
            reverifications=f.reverifications + 1,
            reverified_after_switch=f.reverified_after_switch or f.switches > 0,
        )
    if isinstance(d, ev.CSATRecorded) and e.type == "CSATRecorded":
        after = d.score if f.switches > 0 else f.csat_after_switch
        return replace(f, csat=d.score, csat_after_switch=after)
    if isinstance(d, ev.ConversationResolved) and e.type == "ConversationResolved":
        return replace(
            f, resolved=True, resolved_after_switch=f.resolved_after_switch or f.switches > 0
        )
    return f


HANDOFF_TYPES = frozenset(
    {"HandoffOffered", "HandoffAccepted", "HandoffCompleted", "HandoffExpired", "HandoffDeclined"}
)


# Every event type whose *data* the fold reads (the rest count only through their
# envelope: conversation, position, type, leg): a reader may leave the others undecoded
# (`Ledger.read_all(decode=...)`). tests/unit/projections check that a fold over such a
# read equals the fold over the fully decoded log, for every registered event type.
METRICS_DATA_TYPES = frozenset(
    {
        "ConversationStarted",
        "LegOpened",
        "IdentityVerified",
        "VerificationFailed",
        "CSATRecorded",
        "ConversationResolved",
        "UtteranceTranscribed",
        "AgentSpoke",
        "LegClosed",
        *HANDOFF_TYPES,
    }
)


def handoff_id_of(e: RecordedEvent, facts: ConversationFacts | None = None) -> str | None:
    """The handoff `e` is about: its own id, or for a voice leg's events (given the
    conversation's facts before `e`) the handoff that leg completed."""
    if e.type in HANDOFF_TYPES:
        hid = getattr(e.data, "handoff_id", None)
        return hid if isinstance(hid, str) else None
    voice = facts is not None and facts.voice_handoff is not None
    if voice and e.type in ("AgentSpoke", "LegClosed") and e.leg_id == facts.voice_leg:  # type: ignore[union-attr]
        return facts.voice_handoff  # type: ignore[union-attr]
    return None


def fold_voice(f: ConversationFacts, e: RecordedEvent) -> ConversationFacts:
    """Which leg's timing is being measured, and the pending end of visitor speech."""
    d = e.data
    if isinstance(d, ev.HandoffCompleted):
        return replace(f, voice_handoff=d.handoff_id, voice_leg=d.leg_id, speech_ended_at=None)
    if f.voice_leg is None or e.leg_id != f.voice_leg:
        return f
    if isinstance(d, ev.UtteranceTranscribed) and d.role == "visitor" and d.ended_at:
        return replace(f, speech_ended_at=d.ended_at.timestamp())
    if isinstance(d, ev.AgentSpoke) and d.first_audio_at is not None:
        return replace(f, speech_ended_at=None) if f.speech_ended_at is not None else f
    if isinstance(d, ev.LegClosed):
        return replace(f, voice_handoff=None, voice_leg=None, speech_ended_at=None)
    return f


def fold_handoff(h: HandoffFacts, e: RecordedEvent) -> HandoffFacts:
    d = e.data
    at = e.occurred_at.timestamp()
    if isinstance(d, ev.HandoffOffered):
        return replace(h, channel=d.channel, offered_at=h.offered_at or at)
    if isinstance(d, ev.HandoffAccepted):
        return replace(h, channel=d.channel, accepted_at=h.accepted_at or at)
    if isinstance(d, ev.HandoffCompleted):
        return replace(h, completed_at=h.completed_at or at)
    if isinstance(d, ev.HandoffExpired):
        return replace(h, expired=True)
    if isinstance(d, ev.HandoffDeclined):
        return replace(h, declined=True)
    return h


def fold_leg_timing(h: HandoffFacts, e: RecordedEvent, before: ConversationFacts) -> HandoffFacts:
    """A voice leg's AgentSpoke / LegClosed, folded into the handoff that opened the leg."""
    d = e.data
    if isinstance(d, ev.AgentSpoke) and d.first_audio_at is not None:
        at = d.first_audio_at.timestamp()
        first = h.first_audio_at if h.first_audio_at is not None else at
        turns = h.turn_latencies
        if before.speech_ended_at is not None and len(turns) < _MAX_TURNS:
            turns = (*turns, max(0.0, at - before.speech_ended_at))
        return replace(h, first_audio_at=first, turn_latencies=turns)
    if isinstance(d, ev.LegClosed) and h.first_audio_at is None:
        return replace(h, silent=True)
    return h


@dataclass
class MetricsState:
    """The whole fold in memory: what a read model stores in tables."""

    conversations: dict[str, ConversationFacts] = field(default_factory=dict)
    handoffs: dict[tuple[str, str], HandoffFacts] = field(default_factory=dict)
    totals: Totals = field(default_factory=Totals)


def apply_event(
    state: MetricsState,
    e: RecordedEvent,
    changed: set[str] | None = None,
    changed_handoffs: set[tuple[str, str]] | None = None,
) -> None:
    """Folds one event into `state` (whose dicts hold at least this conversation's facts),
    keeping the totals in step; records what changed for a read model to write back."""
    cid = e.conversation_id
    old = state.conversations.get(cid)
    facts = old if old is not None else ConversationFacts()
    if e.position <= facts.last_position:
        return  # already folded: positions only grow within a conversation
    state.totals.events += 1
    new = replace(fold_voice(fold_conversation(facts, e), e), last_position=e.position)
    if old is not None:
        state.totals.add(conversation_contribution(old), -1)
    state.totals.add(conversation_contribution(new))
    state.conversations[cid] = new
    if changed is not None:
        changed.add(cid)
    hid = handoff_id_of(e, facts)
    if hid is None:
        return
    key = (cid, hid)
    old_h = state.handoffs.get(key)
    if e.type in HANDOFF_TYPES:
        new_h = fold_handoff(old_h or HandoffFacts(), e)
    elif old_h is not None:
        new_h = fold_leg_timing(old_h, e, facts)
    else:
        return
    if old_h is not None:
        state.totals.add(handoff_contribution(old_h), -1)
    state.totals.add(handoff_contribution(new_h))
    state.handoffs[key] = new_h
    if changed_handoffs is not None:
        changed_handoffs.add(key)


def fold_metrics(
    events: Iterable[RecordedEvent], state: MetricsState | None = None
) -> MetricsState:
    state = state or MetricsState()
    for e in events:
        apply_event(state, e)
    return state


# --- the summary the API and Prometheus expose ------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CsatGroup(_Frozen):
    mean: float | None
    count: int


class Latency(_Frozen):
    count: int
    sum: float
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    max: float | None


class Funnel(_Frozen):
    offered: int
    accepted: int
    completed: int
    expired: int
    declined: int
    accept_rate: float | None
    complete_rate: float | None


class HandoffMetrics(_Frozen):
    """`GET /v1/metrics/handoff`."""

    conversations: int
    switched_conversations: int
    channel_switches: int
    csat_with_switch: CsatGroup
    csat_without_switch: CsatGroup
    post_switch_resolution_rate: float | None
    reverification_rate: float | None
    reverified_after_switch: int
    resolved_conversations: int
    funnel: Funnel
    # TRANSITIONS, then VOICE_TIMINGS (from the legs' own first-audio records).
    latency_seconds: dict[str, Latency]
    silent_voice_legs: int
    events: int
    position: int


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (a value that occurred, no interpolation)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def latency(values: Iterable[float]) -> Latency:
    v = sorted(values)
    p50, p90, p95, p99 = (percentile(v, q) for q in QUANTILES)
    return Latency(
        count=len(v), sum=sum(v), p50=p50, p90=p90, p95=p95, p99=p99, max=v[-1] if v else None
    )


def summarise(
    totals: Totals, latencies: Mapping[str, Iterable[float]], position: int
) -> HandoffMetrics:
    t = totals
    return HandoffMetrics(
        conversations=t.conversations,
        switched_conversations=t.switched_conversations,
        channel_switches=t.channel_switches,
        csat_with_switch=CsatGroup(
            mean=ratio(t.csat_with_switch_sum, t.csat_with_switch_count),
            count=t.csat_with_switch_count,
        ),
        csat_without_switch=CsatGroup(
            mean=ratio(t.csat_without_switch_sum, t.csat_without_switch_count),
            count=t.csat_without_switch_count,
        ),
        post_switch_resolution_rate=ratio(t.resolved_after_switch, t.switched_conversations),
        reverification_rate=ratio(t.reverified_after_switch, t.switched_conversations),
        reverified_after_switch=t.reverified_after_switch,
        resolved_conversations=t.resolved_conversations,
        funnel=Funnel(
            offered=t.handoffs_offered,
            accepted=t.handoffs_accepted,
            completed=t.handoffs_completed,
            expired=t.handoffs_expired,
            declined=t.handoffs_declined,
            accept_rate=ratio(t.handoffs_accepted, t.handoffs_offered),
            complete_rate=ratio(t.handoffs_completed, t.handoffs_accepted),
        ),
        latency_seconds={
            name: latency(latencies.get(name, ())) for name in (*TRANSITIONS, *VOICE_TIMINGS)
        },
        silent_voice_legs=t.voice_legs_silent,
        events=t.events,
        position=position,
    )


def state_latencies(handoffs: Iterable[HandoffFacts]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {name: [] for name in (*TRANSITIONS, *VOICE_TIMINGS)}
    for h in handoffs:
        for name in TRANSITIONS:
            value = h.latency(name)
            if value is not None:
                out[name].append(value)
        click = h.click_to_first_audio()
        if click is not None:
            out["click_to_first_audio"].append(click)
        out["turn"].extend(h.turn_latencies)
    return out


def build_metrics(events: Iterable[RecordedEvent], upto: int | None = None) -> HandoffMetrics:
    """The metrics of `events` (the global log, in any order) folded in memory: the reference
    the read models must equal. `upto`: as of that global sequence."""
    state = MetricsState()
    position = 0
    for e in events:
        if upto is not None and e.sequence > upto:
            continue
        apply_event(state, e)
        position = max(position, e.sequence)
    return summarise(state.totals, state_latencies(state.handoffs.values()), position)
