"""The `threadline` console script: a thin composer of the command groups in
`threadline.app.commands` (each module exposes `register(app)`)."""

from __future__ import annotations

import sys

import typer

from threadline.app.commands import config as config_cli
from threadline.app.commands import demo as demo_cli
from threadline.app.commands import ledger as ledger_cli
from threadline.app.commands import operators as console_cli
from threadline.app.commands import projections as projections_cli
from threadline.app.commands import serve as api_cli
from threadline.app.commands import stream as kafka_cli


def build() -> typer.Typer:
    app = typer.Typer(
        name="threadline",
        help="Threadline: an event-sourced omnichannel conversation ledger.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
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
        sys.exit(f"error: {exc}")
    build()()


if __name__ == "__main__":
    main()
