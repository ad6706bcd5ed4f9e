"""The `threadline` console script: a thin composer of the command groups in
`threadline.app.commands` (each module exposes `register(app)`)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

import threadline
from threadline.app.cli_help import TidyGroup
from threadline.app.commands import config as config_cli
from threadline.app.commands import conversations as conversations_cli
from threadline.app.commands import demo as demo_cli
from threadline.app.commands import ledger as ledger_cli
from threadline.app.commands import operators as console_cli
from threadline.app.commands import projections as projections_cli
from threadline.app.commands import serve as api_cli
from threadline.app.commands import stream as kafka_cli
from threadline.app.events import register_event_types


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"threadline {threadline.__version__}")
        raise typer.Exit()


def _start(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Threadline: an event-sourced omnichannel conversation ledger."""
    # Every command may read or append events of outer packages' types.
    register_event_types()


def build() -> typer.Typer:
    app = typer.Typer(
        name="threadline",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        # Markdown: a docstring's line breaks are not kept in the help, `code` is shown as such.
        rich_markup_mode="markdown",
        cls=TidyGroup,
    )
    app.callback()(_start)
    conversations_cli.register(app)
    ledger_cli.register(app)
    projections_cli.register(app)
    api_cli.register(app)
    console_cli.register(app)
    demo_cli.register(app)
    kafka_cli.register(app)
    config_cli.register(app)
    return app


def main() -> None:
    # The configuration is read (and a misspelt variable refused) before any command runs.
    from threadline.app.settings import current
    from threadline.handoff.errors import ConfigurationError

    try:
        current()
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    build()()


if __name__ == "__main__":
    main()
