"""`threadline privacy rotate`: re-wrap the data keys under a new master key
(`threadline.ledger.rotation`; the procedure is in docs/privacy.md). Errors: one line, exit 1."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from threadline.app.commands.ledger import console, ledger_session
from threadline.ledger.rotation import rotate_master_key

privacy_app = typer.Typer(
    help="Encrypted personal data: master key rotation.", no_args_is_help=True
)


@privacy_app.command("rotate")
def rotate(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Re-wrap every data key with THREADLINE_MASTER_KEY (the new key), reading those still
    wrapped by THREADLINE_MASTER_KEY_PREVIOUS (the old one). Resumable; idempotent."""
    with ledger_session() as store:
        report = rotate_master_key(store)
    if as_json:
        typer.echo(json.dumps(report.to_json()))
        return
    if report.old_master_id == report.new_master_id:
        console.print(f"nothing to do: the database's master key is {report.new_master_id}")
        return
    state = "done" if report.completed else "NOT finished (run it again)"
    console.print(
        f"{report.rewrapped} data key(s) re-wrapped from master key {report.old_master_id} "
        f"to {report.new_master_id}: {state}"
    )
    if not report.completed:
        raise typer.Exit(1)
