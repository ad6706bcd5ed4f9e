"""`threadline replay`: a conversation's events in order (the projections package adds
`--as transcript|context|identity` views on top)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ledger.cli import fail, ledger_session
from ledger.envelope import RecordedEvent

console = Console(highlight=False, soft_wrap=True)


def replay(
    conversation_id: Annotated[str, typer.Argument(help="Conversation id")],
    upto: Annotated[int | None, typer.Option("--upto", help="Stop at this position")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines, one event a line")] = False,
) -> None:
    """Print the events of a conversation in position order."""
    if upto is not None and upto < 1:
        fail("error: --upto must be ≥ 1", code=2)
    with ledger_session() as store:
        events = store.read(conversation_id, upto=upto)
        if not events and store.version(conversation_id) == 0:
            fail(f"error: conversation {conversation_id} does not exist")
    if as_json:
        for event in events:
            typer.echo(json.dumps(event.to_json(), ensure_ascii=False))
        return
    console.print(_table(conversation_id, events))


def _table(conversation_id: str, events: list[RecordedEvent]) -> Table:
    table = Table(title=f"conversation {conversation_id}", title_justify="left")
    for column in ("pos", "seq", "type", "leg", "actor", "occurred_at", "data"):
        table.add_column(column, overflow="fold")
    for e in events:
        table.add_row(
            str(e.position),
            str(e.sequence),
            e.type,
            e.leg_id or "",
            e.actor or "",
            e.occurred_at.isoformat(timespec="seconds"),
            json.dumps(e.data.model_dump(mode="json"), ensure_ascii=False),
        )
    return table


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
