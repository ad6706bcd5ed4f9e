"""Text for people at a terminal: one line per event, cut to the terminal's width (80 columns
when there is no terminal), and wrapped transcript turns. `--wide` and `--json` give
everything; these helpers only decide how much of it fits."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from threadline.ledger.envelope import RecordedEvent
from threadline.projections.transcript import Transcript

ELLIPSIS = "…"
TYPE_WIDTH = 24  # EscalationSignalDetected, the longest event type name


def fit(line: str, width: int | None) -> str:
    """`line` cut to `width` characters, the cut marked with an ellipsis; None: uncut."""
    if width is None or len(line) <= width:
        return line
    return line[: max(0, width - 1)] + ELLIPSIS


def _value(value: Any) -> str:
    if isinstance(value, str):
        plain = value and not any(c.isspace() or c in "\"'=" for c in value)
        return value if plain else json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def payload(event: RecordedEvent) -> str:
    """`key=value …` for the payload's set fields, ids last (they are long and rarely what a
    reader looks for first)."""
    data = event.data.model_dump(mode="json", exclude_none=True)
    items = sorted(data.items(), key=lambda item: item[0].endswith("_id"))
    return " ".join(f"{key}={_value(value)}" for key, value in items)


def leg_channels(events: Iterable[RecordedEvent]) -> dict[str, str]:
    """Leg id → its channel, from the LegOpened events: a short name for a long id."""
    return {
        e.leg_id: str(getattr(e.data, "channel", "?"))
        for e in events
        if e.type == "LegOpened" and e.leg_id
    }


def event_lines(events: list[RecordedEvent], width: int | None) -> list[str]:
    """`pos time type leg details`, one line per event fitted to `width`: the leg by its
    channel, the payload as key=value. `width=None` (wide): also the global sequence, the
    leg id and the actor, and nothing is cut."""
    legs = leg_channels(events)
    type_width = max((len(e.type) for e in events), default=4)
    wide = width is None
    seq = f" {'seq':>6}" if wide else ""
    lines = [f"{'pos':>5}{seq} {'time':<8} {'type':<{type_width}} {'leg':<7} details"]
    day = None
    for e in events:
        if e.occurred_at.date() != day:
            day = e.occurred_at.date()
            lines.append(f"-- {day.isoformat()} ({_zone(e.occurred_at)}) --")
        when = e.occurred_at.strftime("%H:%M:%S")
        leg = legs.get(e.leg_id, e.leg_id[:7]) if e.leg_id else "-"
        text = payload(e)
        if wide:
            seq = f" {e.sequence:>6}"
            extra = [f"leg_id={e.leg_id}"] if e.leg_id else []
            extra += [f"actor={e.actor}"] if e.actor else []
            text = " ".join([text, *extra])
        line = f"{e.position:>5}{seq} {when} {e.type:<{type_width}} {leg:<7} {text}"
        lines.append(fit(line.rstrip(), width))
    return lines


def _zone(moment: datetime) -> str:
    return moment.tzname() or "local time"


def transcript_lines(transcript: Transcript, width: int | None) -> list[str]:
    """One entry per line like `render_text`, long turns wrapped under their text."""
    lines = []
    for e in transcript.entries:
        head = f"{e.position:>5} {e.occurred_at.strftime('%H:%M:%S')} {e.channel or '-':<8} "
        if e.is_turn:
            text = f"{e.role}: {e.text}" + (" [interrupted]" if e.interrupted else "")
        else:
            text = f"-- {e.text} --"
        lines.extend(wrap(head, text, width))
    return lines


def wrap(head: str, text: str, width: int | None) -> list[str]:
    """`head` then `text`, continued on lines indented to where the text starts."""
    if width is None or width - len(head) < 20:
        return [head + text]
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=head,
        subsequent_indent=" " * len(head),
        break_on_hyphens=False,
    ) or [head.rstrip()]
