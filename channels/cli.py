"""The `threadline` console script: a thin composer of each package's commands
(each package exposes `register(app)`)."""

from __future__ import annotations

import typer

from channels import api_cli, demo_cli
from channels.console import cli as console_cli
from channels.kafka import cli as kafka_cli
from ledger import cli as ledger_cli
from projections import cli as projections_cli


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
    return app


def main() -> None:
    build()()


if __name__ == "__main__":
    main()
