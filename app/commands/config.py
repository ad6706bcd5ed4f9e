"""`threadline config show`: the effective configuration, secrets masked."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from threadline.app.commands.ledger import config
from threadline.app.settings import masked

config_app = typer.Typer(
    help="The configuration this process would run with.", no_args_is_help=True
)


@config_app.command("show")
def show(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    changed: Annotated[
        bool, typer.Option("--changed", help="Only the variables set in the environment")
    ] = False,
) -> None:
    """Every THREADLINE_* setting with its effective value; secrets print as ********."""
    settings = config()
    values = masked(settings)
    if changed:
        set_here = {name for name in values if _is_set(name)}
        values = {k: v for k, v in values.items() if k in set_here}
    if as_json:
        typer.echo(json.dumps(values, indent=2))
        return
    width = max((len(name) for name in values), default=0)
    for name, value in values.items():
        shown = "(unset)" if value is None else value
        typer.echo(f"{name:<{width}}  {shown}")


def _is_set(name: str) -> bool:
    import os

    return name in {k.upper() for k in os.environ}


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
