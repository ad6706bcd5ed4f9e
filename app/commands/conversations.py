"""`threadline conversations list|show`: what is in the ledger, for a person at a terminal.

- `list [--tenant T] [--channel C] [--since WHEN] [--limit N] [--json]`: one row per
  conversation, most recently active first;
- `show ID [--wide] [--json]`: legs, verification, handoffs and the transcript.

Both fold the ledger's events with the same code the console uses (`Catalog`, the
transcript and agent-context projections); nothing is written.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from threadline.app.commands import render
from threadline.app.commands.ledger import fail, ledger_session
from threadline.channels.console.catalog import CHANNELS, Catalog, ConversationSummary, Query
from threadline.projections.context import AgentContext, build_context
from threadline.projections.transcript import build_transcript

console = Console(highlight=False, soft_wrap=True)
conversations_app = typer.Typer(
    help="Conversations in the ledger: list, show.", no_args_is_help=True
)

_AGO = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`30m`, `12h`, `7d`, `2w` ago, or an ISO date/time (UTC unless it says otherwise)."""
    now = now or datetime.now(UTC)
    ago = _AGO.match(text.strip().lower())
    if ago:
        return now - timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(f"error: --since {text!r}: use 30m, 12h, 7d, 2w or a date (2026-12-01[T10:00])", 2)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@conversations_app.command("list")
def list_conversations(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant")] = None,
    channel: Annotated[
        str | None,
        typer.Option("--channel", help=f"Only those with a leg on it ({', '.join(CHANNELS)})"),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", metavar="WHEN", help="Active since: 30m, 12h, 7d, or a date/time (UTC)"
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """List conversations, most recently active first."""
    after = parse_since(since) if since is not None else None
    with ledger_session() as store:
        # Every match, so that --tenant and --since apply before --limit.
        page = Catalog(store).search(Query(channel=channel, limit=2**31))
    rows = [
        item
        for item in page.items
        if (tenant is None or item["tenant"] == tenant)
        and (after is None or datetime.fromisoformat(item["last_at"]) >= after)
    ]
    shown = rows[:limit]
    if as_json:
        typer.echo(json.dumps(shown))
        return
    if not shown:
        console.print("no conversations match", markup=False)
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("conversation", no_wrap=True)
    table.add_column("last active", no_wrap=True)
    table.add_column("status")
    table.add_column("channels")
    table.add_column("events", justify="right")
    for item in shown:
        table.add_row(
            item["conversation_id"],
            _when(item["last_at"]),
            item["status"],
            ",".join(item["channels"]) or "-",
            str(item["version"]),
        )
    console.print(table)
    if len(rows) > len(shown):
        console.print(f"({len(rows) - len(shown)} more: raise --limit)", markup=False)


def _when(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M")


@conversations_app.command("show")
def show(
    conversation_id: Annotated[str, typer.Argument(help="Conversation id")],
    wide: Annotated[
        bool, typer.Option("--wide", help="Lines as long as they are, not wrapped")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """A conversation at a glance: its legs, verification, handoffs and transcript."""
    with ledger_session() as store:
        events = store.read(conversation_id)
    if not events:
        fail(f"error: conversation {conversation_id} does not exist")
    summary = ConversationSummary(conversation_id, events[0].occurred_at, events[0].occurred_at)
    for event in events:
        summary.apply(event)
    ctx = build_context(events)
    transcript = build_transcript(events)
    if as_json:
        doc: dict[str, Any] = {
            "summary": summary.to_json(),
            "legs": [leg.model_dump(mode="json") for leg in ctx.legs],
            "verification": ctx.verification.model_dump(mode="json"),
            "handoffs": [h.model_dump(mode="json") for h in ctx.handoffs],
            "transcript": transcript.model_dump(mode="json")["entries"],
        }
        typer.echo(json.dumps(doc, ensure_ascii=False))
        return
    width = None if wide else console.width
    facts = [*_heading(summary), *_legs(ctx), *_verification(ctx), *_handoffs(ctx)]
    for line in [render.fit(line, width) for line in facts]:
        console.print(line, markup=False)
    console.print("transcript:", markup=False)
    for line in render.transcript_lines(transcript, width):
        console.print(line, markup=False)


def _heading(s: ConversationSummary) -> list[str]:
    status = f"resolved ({s.outcome})" if s.outcome and s.outcome != "resolved" else s.status
    lines = [
        f"conversation {s.conversation_id}: {status}, tenant {s.tenant}",
        f"started {s.started_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC, last event "
        f"{s.last_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC, {s.version} events",
    ]
    if s.csat is not None:
        lines.append(f"CSAT {s.csat}")
    return lines


def _legs(ctx: AgentContext) -> list[str]:
    lines = ["legs:"]
    for leg in ctx.legs:
        if leg.open:
            state = f"from {leg.opened_position}, open"
        else:
            state = f"{leg.opened_position} to {leg.closed_position}, closed"
            state += f" ({leg.close_reason})" if leg.close_reason else ""
        lines.append(f"  {leg.channel:<8} {state}; {leg.leg_id}")
    return lines if ctx.legs else ["legs: none"]


def _verification(ctx: AgentContext) -> list[str]:
    v = ctx.verification
    if not v.level:
        line = "verification: not verified"
    else:
        line = f"verification: level {v.level} by {v.method} on {v.channel} ({v.leg_id})"
    if v.failures:
        line += f"; {v.failures} failed check(s)"
        line += f", last: {v.last_failure_reason}" if v.last_failure_reason else ""
    return [line]


def _handoffs(ctx: AgentContext) -> list[str]:
    if not ctx.handoffs:
        return []
    lines = ["handoffs:"]
    for h in ctx.handoffs:
        reason = f" ({h.reason})" if h.reason else ""
        lines.append(f"  to {h.channel}{reason}: {h.status}; {h.handoff_id}")
    return lines


def register(app: typer.Typer) -> None:
    app.add_typer(conversations_app, name="conversations")
