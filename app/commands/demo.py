"""`threadline seed` and `threadline demo`; `threadline.app.cli` mounts these on the main app."""

from __future__ import annotations

from typing import Annotated

import typer

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="database (default THREADLINE_DATABASE_URL, else sqlite:///threadline.db)",
    ),
]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def _url(database_url: str | None) -> str:
    if database_url:
        return database_url
    from threadline.app.commands.ledger import config

    return config().ledger.database_url


def seed(database_url: DatabaseOption = None) -> None:
    """Create the tool tables (claims, policies, appointments, plans) and fill demo data."""
    from threadline.agent.sqltools import open_tool_backend
    from threadline.agent.sqltools import seed as demo_data

    try:
        with open_tool_backend(_url(database_url)) as tools:
            summary = demo_data.seed(tools)
    except Exception as exc:
        _fail(f"cannot seed: {type(exc).__name__}: {exc}")
        return
    m = demo_data.DEMO_MEMBER
    typer.echo(
        f"seeded {summary.members} members, {summary.claims} claims, {summary.slots} slots; "
        f"demo member {m.first_name} {m.last_name}: member {m.member_id}, policy "
        f"{m.policy_number}, born {m.date_of_birth} (January claim {summary.january_claim})"
    )


def demo(
    database_url: DatabaseOption = None,
    voice: Annotated[str, typer.Option(help="how the voice leg is driven")] = "scripted",
) -> None:
    """Run the seed scenario end to end (chat → switch to voice → back to chat) offline and
    print the unified transcript and the handoff metrics."""
    from threadline.agent.factory import build_agent
    from threadline.agent.sqltools import open_tool_backend
    from threadline.agent.sqltools.seed import seed as demo_data
    from threadline.app.demo import VOICE_LEGS, format_metrics, run_demo
    from threadline.handoff.service import HandoffService
    from threadline.ledger.store import open_ledger

    if voice not in VOICE_LEGS:
        _fail(f"unknown voice driver {voice!r}; choose from {', '.join(sorted(VOICE_LEGS))}")
    from threadline.app.commands.ledger import config

    settings = config()
    url = _url(database_url)
    try:
        ledger = open_ledger(url, settings=settings.ledger)
        tools = open_tool_backend(url)
    except Exception as exc:
        _fail(f"cannot open {url.split(':', 1)[0]} database: {type(exc).__name__}: {exc}")
        return
    try:
        demo_data(tools)
        result = run_demo(
            ledger,
            tools,
            build_agent(tools, settings.handoff),
            HandoffService(ledger, settings=settings.handoff),
            VOICE_LEGS[voice](),
        )
    finally:
        tools.close()
        ledger.close()
    typer.echo(f"conversation {result.conversation_id}\n")
    typer.echo(result.transcript)
    typer.echo("")
    typer.echo(format_metrics("handoff metrics, this conversation:", result.metrics))
    typer.echo(format_metrics("handoff metrics, whole store:", result.store_metrics))
    if result.problems:
        for problem in result.problems:
            typer.echo(f"problem: {problem}", err=True)
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.command("seed")(seed)
    app.command("demo")(demo)
