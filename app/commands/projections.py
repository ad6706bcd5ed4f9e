"""Projection commands of the `threadline` CLI.

- `threadline replay ID [--upto N] [--json] [--as events|transcript|context|identity]`: a
  conversation as of position N, as raw events or as one of its projections;
- `threadline projections rebuild [NAME]`: rebuild cross-conversation read models from zero,
  with a progress bar;
- `threadline projections status [--json]`: each read model's position, lag and pending gaps.

Errors are one line on stderr and exit status ≠ 0 (`threadline.app.commands.ledger.fail`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from threadline.app.commands import render
from threadline.app.commands.ledger import config, fail, ledger_session
from threadline.projections.context import AgentContext, build_context
from threadline.projections.errors import ProjectionError
from threadline.projections.identity import IdentityState, build_identity
from threadline.projections.service import TRACKERS, VIEWS, open_view, runner_for, view_url
from threadline.projections.transcript import build_transcript
from threadline.projections.views import TrackedView

console = Console(highlight=False, soft_wrap=True)
progress_console = Console(stderr=True, highlight=False)


class View(StrEnum):
    events = "events"
    transcript = "transcript"
    context = "context"
    identity = "identity"


def replay(
    conversation_id: Annotated[str, typer.Argument(help="Conversation id")],
    upto: Annotated[int | None, typer.Option("--upto", help="As of this position")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    view: Annotated[
        View, typer.Option("--as", help="events, or a projection as of --upto")
    ] = View.events,
    wide: Annotated[
        bool, typer.Option("--wide", help="Full lines, not cut to the terminal's width")
    ] = False,
) -> None:
    """Print a conversation (as of --upto): its events, transcript, agent context or identity.

    Events are one line each, cut to the terminal's width; `--wide` or `--json` print all."""
    if upto is not None and upto < 1:
        fail("error: --upto must be ≥ 1", code=2)
    with ledger_session() as store:
        events = store.read(conversation_id, upto=upto)
        if not events and store.version(conversation_id) == 0:
            fail(f"error: conversation {conversation_id} does not exist")
    if view is View.events:
        if as_json:
            for event in events:
                typer.echo(json.dumps(event.to_json(), ensure_ascii=False))
        else:
            console.print(f"conversation {conversation_id}: {len(events)} events", markup=False)
            for line in render.event_lines(events, None if wide else console.width):
                console.print(line, markup=False)
        return
    if view is View.transcript:
        transcript = build_transcript(events)
        if as_json:
            typer.echo(transcript.model_dump_json(indent=2))
        else:
            for line in render.transcript_lines(transcript, None if wide else console.width):
                console.print(line, markup=False)
    elif view is View.context:
        ctx = build_context(events)
        if as_json:
            typer.echo(ctx.model_dump_json(indent=2))
        else:
            _print_context(ctx)
    else:
        state = build_identity(events)
        if as_json:
            typer.echo(state.model_dump_json(indent=2))
        else:
            _print_identity(state)


def _print_context(ctx: AgentContext) -> None:
    v = ctx.verification
    legs = ", ".join(
        f"{leg.leg_id} {leg.channel}" + ("" if leg.open else " (closed)") for leg in ctx.legs
    )
    lines = [
        f"conversation {ctx.conversation_id} as of position {ctx.last_position}"
        f" ({ctx.event_count} events, {ctx.turn_count} turns)",
        f"topic: {ctx.topic.phrase if ctx.topic else '-'}",
        f"channel now: {ctx.current_channel or '-'}; legs: {legs or '-'}",
        f"verified: level {v.level}"
        + (f" by {v.method} on {v.channel} ({v.leg_id})" if v.level else "")
        + (f"; {v.failures} failed check(s)" if v.failures else ""),
        "open questions: "
        + ("; ".join(q.text for q in ctx.open_questions) if ctx.open_questions else "-"),
        "entities: "
        + (", ".join(f"{e.kind}={e.value}" for e in ctx.entities) if ctx.entities else "-"),
    ]
    for t in ctx.tool_calls:
        outcome = t.error if t.status == "error" else json.dumps(t.result)
        lines.append(f"tool {t.name} ({t.call_id}): {t.status} {outcome}")
    for s in ctx.signals:
        lines.append(f"signal {s.signal} {s.score:.2f}: {s.evidence}")
    for h in ctx.handoffs:
        lines.append(f"handoff {h.handoff_id} to {h.channel}: {h.status}")
    lines.append("recent turns:")
    for turn in ctx.recent_turns:
        cut = " [interrupted]" if turn.interrupted else ""
        lines.append(f"  {turn.position:>5} {turn.channel or '-':<8} {turn.role}: {turn.text}{cut}")
    for line in lines:
        console.print(line, markup=False)


def _print_identity(s: IdentityState) -> None:
    console.print(
        f"conversation {s.conversation_id} as of position {s.last_position}: level {s.level}"
        + (f" by {s.method} on {s.verified_channel} ({s.verified_leg_id})" if s.level else "")
        + f"; {s.failures} failure(s); {s.reverifications} re-verification(s)",
        markup=False,
    )
    for leg in s.legs:
        flags = [
            f for f, on in (("inherited", leg.inherited), ("re-verified", leg.reverified)) if on
        ]
        console.print(
            f"  leg {leg.leg_id} {leg.channel}: level {leg.level}"
            + (f" by {leg.method}" if leg.method else "")
            + (f" ({', '.join(flags)})" if flags else ""),
            markup=False,
        )
    for c in s.checks:
        extra = " RE-VERIFICATION" if c.reverification else (" inherited" if c.inherited else "")
        level = f" level {c.level}" if c.level is not None else ""
        console.print(
            f"  {c.position:>5} {c.kind} {c.method}{level} on {c.channel or '-'}{extra}",
            markup=False,
        )


# --- projections rebuild / status -------------------------------------------------------

projections_app = typer.Typer(
    help="Cross-conversation read models: rebuild, status.", no_args_is_help=True
)


@contextmanager
def _views(names: list[str]) -> Iterator[list[TrackedView]]:
    opened: list[TrackedView] = []
    try:
        for name in names:
            settings = config()
            opened.append(
                open_view(name, view_url(settings.projections, settings.ledger.database_url))
            )
        yield opened
    except ProjectionError as exc:
        fail(f"error: {exc}")
    finally:
        for view in opened:
            view.close()


@projections_app.command("rebuild")
def rebuild(
    name: Annotated[
        str | None, typer.Argument(metavar="[NAME]", help=f"One of: {', '.join(sorted(VIEWS))}")
    ] = None,
) -> None:
    """Rebuild read models from zero (stop running runners first)."""
    names = [name] if name else sorted(VIEWS)
    with ledger_session() as store, _views(names) as views:
        for view in views:
            started = time.perf_counter()
            view.reset()
            runner = runner_for(store, view, config().projections)
            target = store.max_sequence()
            with Progress(
                TextColumn(f"rebuilding {view.name}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=progress_console,
                transient=True,
            ) as bar:
                applied = runner.catch_up(_progress(bar, bar.add_task(view.name, total=target)))
            elapsed = time.perf_counter() - started
            rate = applied / elapsed if elapsed > 0 else 0.0
            console.print(
                f"rebuilt {view.name}: {applied} events to position "
                f"{view.tracking().position} in {elapsed:.2f} s ({rate:,.0f} events/s)"
            )


def _progress(bar: Progress, task: TaskID) -> Callable[[int, int], None]:
    def update(position: int, _target: int) -> None:
        bar.update(task, completed=position)

    return update


@projections_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Each read model's position, lag behind the global log, and pending gaps."""
    from threadline.streaming.status import register_status, relay_partition_rows

    register_status(config().stream)
    rows: list[dict[str, Any]] = []
    with ledger_session() as store, _views(sorted(VIEWS)) as views:
        top = store.max_sequence()
        partition_heads = getattr(store.recorder, "partition_heads", None)
        heads: dict[int, int] = partition_heads() if partition_heads is not None else {}
        trackers = sorted(TRACKERS)
        relayed: list[dict[str, Any]] = []
        if len(heads) > 1 and "kafka.relay" in trackers:
            # a partitioned log is relayed per partition (streaming/partition_relay.py)
            trackers.remove("kafka.relay")
            relayed = relay_partition_rows(config().stream, heads)
        for name in trackers:
            views.append(TRACKERS[name]())  # closed with the read models
        for view in views:
            state = view.tracking()
            rows.append(
                {
                    "name": view.name,
                    "position": state.position,
                    "max_sequence": top,
                    "lag": max(0, top - state.position),
                    "pending_gaps": sorted(state.gaps),
                }
            )
        rows += relayed
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table(title="projections", title_justify="left")
    for column in ("name", "position", "max sequence", "lag", "pending gaps"):
        table.add_column(column)
    for r in rows:
        gaps = ", ".join(map(str, r["pending_gaps"][:10])) + (
            " …" if len(r["pending_gaps"]) > 10 else ""
        )
        table.add_row(
            r["name"], str(r["position"]), str(r["max_sequence"]), str(r["lag"]), gaps or "-"
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
    app.add_typer(projections_app, name="projections")
