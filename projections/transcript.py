"""Cross-channel transcript: every message and utterance of every leg in one ordered thread,
with markers where legs open and close and where a handoff moves on.

Voice turns sit in the same thread as chat turns (that is how the voice transcript "appears
back in the chat thread"). An interrupted agent utterance shows only what was spoken.
Like every projection here it is a pure fold: chunked folding equals one fold, and unknown
event types are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from threadline.ledger import events as ev
from threadline.ledger.envelope import RecordedEvent
from threadline.projections.errors import ProjectionError

EntryKind = Literal[
    "message",
    "utterance",
    "speech",
    "conversation_started",
    "leg_opened",
    "leg_closed",
    "handoff_offered",
    "handoff_accepted",
    "handoff_completed",
    "handoff_expired",
    "handoff_declined",
    "resolved",
]
TURN_KINDS = frozenset({"message", "utterance", "speech"})


class Entry(BaseModel):
    """One line of the transcript. Markers have no role; their `text` describes the step."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    position: int
    sequence: int
    occurred_at: datetime
    kind: EntryKind
    leg_id: str | None
    channel: ev.Channel | None
    role: ev.Role | None = None
    text: str
    interrupted: bool = False
    handoff_id: str | None = None

    @property
    def is_turn(self) -> bool:
        return self.kind in TURN_KINDS


class Transcript(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    conversation_id: str | None = None
    started_channel: ev.Channel | None = None
    leg_channels: dict[str, ev.Channel] = {}
    entries: tuple[Entry, ...] = ()
    last_position: int = 0

    @property
    def turns(self) -> tuple[Entry, ...]:
        return tuple(e for e in self.entries if e.is_turn)


class TranscriptFold:
    def __init__(self, start: Transcript | None = None) -> None:
        t = start or Transcript()
        self.conversation_id = t.conversation_id
        self.started_channel = t.started_channel
        self.leg_channels = dict(t.leg_channels)
        self.entries = list(t.entries)
        self.last_position = t.last_position

    def apply(self, e: RecordedEvent) -> None:
        if self.conversation_id is None:
            self.conversation_id = e.conversation_id
        elif e.conversation_id != self.conversation_id:
            raise ProjectionError(
                f"event of conversation {e.conversation_id} folded into the transcript of "
                f"{self.conversation_id}"
            )
        if e.position <= self.last_position:
            return
        self.last_position = e.position
        handler = _HANDLERS.get(e.type)
        if handler is not None and isinstance(e.data, handler[0]):
            handler[1](self, e)

    def add(
        self,
        e: RecordedEvent,
        kind: EntryKind,
        text: str,
        *,
        role: ev.Role | None = None,
        interrupted: bool = False,
        handoff_id: str | None = None,
    ) -> None:
        channel = self.leg_channels.get(e.leg_id) if e.leg_id else None
        self.entries.append(
            Entry.model_construct(
                position=e.position,
                sequence=e.sequence,
                occurred_at=e.occurred_at,
                kind=kind,
                leg_id=e.leg_id,
                channel=channel or self.started_channel,
                role=role,
                text=text,
                interrupted=interrupted,
                handoff_id=handoff_id,
            )
        )

    def snapshot(self) -> Transcript:
        return Transcript.model_construct(
            conversation_id=self.conversation_id,
            started_channel=self.started_channel,
            leg_channels=dict(self.leg_channels),
            entries=tuple(self.entries),
            last_position=self.last_position,
        )


def _started(f: TranscriptFold, e: RecordedEvent) -> None:
    assert isinstance(e.data, ev.ConversationStarted)
    f.started_channel = e.data.channel
    f.add(e, "conversation_started", f"conversation started on {e.data.channel}")


def _leg_opened(f: TranscriptFold, e: RecordedEvent) -> None:
    assert isinstance(e.data, ev.LegOpened)
    if e.leg_id is not None:
        f.leg_channels[e.leg_id] = e.data.channel
    f.add(e, "leg_opened", f"{e.data.channel} leg opened")


def _leg_closed(f: TranscriptFold, e: RecordedEvent) -> None:
    assert isinstance(e.data, ev.LegClosed)
    channel = f.leg_channels.get(e.leg_id) if e.leg_id else None
    f.add(e, "leg_closed", f"{channel or 'leg'} leg closed: {e.data.reason}")


def _message(f: TranscriptFold, e: RecordedEvent) -> None:
    assert isinstance(e.data, ev.MessagePosted)
    f.add(e, "message", e.data.text, role=e.data.role)


def _utterance(f: TranscriptFold, e: RecordedEvent) -> None:
    assert isinstance(e.data, ev.UtteranceTranscribed)
    f.add(e, "utterance", e.data.text, role=e.data.role)


def _spoke(f: TranscriptFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.AgentSpoke)
    text = (d.spoken_text or "") if d.interrupted else d.text
    if text.strip():
        f.add(e, "speech", text, role="agent", interrupted=d.interrupted)


def _offered(f: TranscriptFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.HandoffOffered)
    why = f" ({d.reason})" if d.reason else ""
    f.add(e, "handoff_offered", f"switch to {d.channel} offered{why}", handoff_id=d.handoff_id)


def _accepted(f: TranscriptFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.HandoffAccepted)
    f.add(e, "handoff_accepted", f"switch to {d.channel} accepted", handoff_id=d.handoff_id)


def _completed(f: TranscriptFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.HandoffCompleted)
    channel = f.leg_channels.get(d.leg_id, "new leg")
    f.add(e, "handoff_completed", f"switched to {channel}", handoff_id=d.handoff_id)


def _expired(f: TranscriptFold, e: RecordedEvent) -> None:
    assert isinstance(e.data, ev.HandoffExpired)
    f.add(e, "handoff_expired", "switch offer expired", handoff_id=e.data.handoff_id)


def _declined(f: TranscriptFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.HandoffDeclined)
    why = f": {d.reason}" if d.reason else ""
    f.add(e, "handoff_declined", f"switch declined{why}", handoff_id=d.handoff_id)


def _resolved(f: TranscriptFold, e: RecordedEvent) -> None:
    assert isinstance(e.data, ev.ConversationResolved)
    f.add(e, "resolved", f"conversation {e.data.outcome}")


_Handler = Callable[[TranscriptFold, RecordedEvent], None]
_HANDLERS: dict[str, tuple[type[ev.EventData], _Handler]] = {
    "ConversationStarted": (ev.ConversationStarted, _started),
    "LegOpened": (ev.LegOpened, _leg_opened),
    "LegClosed": (ev.LegClosed, _leg_closed),
    "MessagePosted": (ev.MessagePosted, _message),
    "UtteranceTranscribed": (ev.UtteranceTranscribed, _utterance),
    "AgentSpoke": (ev.AgentSpoke, _spoke),
    "HandoffOffered": (ev.HandoffOffered, _offered),
    "HandoffAccepted": (ev.HandoffAccepted, _accepted),
    "HandoffCompleted": (ev.HandoffCompleted, _completed),
    "HandoffExpired": (ev.HandoffExpired, _expired),
    "HandoffDeclined": (ev.HandoffDeclined, _declined),
    "ConversationResolved": (ev.ConversationResolved, _resolved),
}


def build_transcript(
    events: Iterable[RecordedEvent], *, start: Transcript | None = None, upto: int | None = None
) -> Transcript:
    """Folds one conversation's events into its transcript (`upto`: as of that position)."""
    fold = TranscriptFold(start)
    for event in events:
        if upto is not None and event.position > upto:
            break
        fold.apply(event)
    return fold.snapshot()


def render_text(transcript: Transcript) -> str:
    """Plain text, one line per entry: for the CLI and for humans reading a replay."""
    lines = []
    for e in transcript.entries:
        when = e.occurred_at.strftime("%H:%M:%S")
        where = e.channel or "-"
        if e.is_turn:
            cut = " [interrupted]" if e.interrupted else ""
            lines.append(f"{e.position:>5} {when} {where:<8} {e.role}: {e.text}{cut}")
        else:
            lines.append(f"{e.position:>5} {when} {where:<8} -- {e.text} --")
    return "\n".join(lines)
