"""Ledger commands of the `threadline` CLI: append, audit verify/export, schema.

`register(app)` adds them to the composed CLI (`threadline.app.cli`). Errors are one line on
stderr and exit status 1; nothing is appended on error. The database comes from
`THREADLINE_DATABASE_URL`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar
from uuid import UUID

import typer
from rich.console import Console

from threadline.app.settings import Settings, current
from threadline.handoff.errors import ConfigurationError
from threadline.ledger import audit, checkpoint
from threadline.ledger.codec import IdentityCodec
from threadline.ledger.envelope import NewEvent
from threadline.ledger.errors import ThreadlineError
from threadline.ledger.events import json_schemas, model_for
from threadline.ledger.store import Ledger, open_ledger

T = TypeVar("T")
console = Console(highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr, then exit ≠ 0."""
    typer.echo(" ".join(str(message).split()), err=True)
    raise typer.Exit(code)


def config() -> Settings:
    """The configuration this command runs with, from the environment it was started in; a
    bad or unknown variable ends the command with one line."""
    try:
        return current()
    except ConfigurationError as exc:
        fail(f"error: {exc}", code=2)


@contextmanager
def ledger_session(*, stored_form: bool = False) -> Iterator[Ledger]:
    """Opens the configured ledger and turns ledger errors into one-line CLI errors.
    `stored_form`: the caller only reads stored bytes (audit), so no data keys are needed:
    an auditor can verify and export without the master key."""
    try:
        store = open_ledger(
            settings=config().ledger, codec=IdentityCodec() if stored_form else None
        )
    except ThreadlineError as exc:
        fail(f"error: {exc}")
    try:
        yield store
    except ThreadlineError as exc:
        fail(f"error: {exc}")
    finally:
        store.close()


def guarded(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ThreadlineError as exc:
        fail(f"error: {exc}")


def _parse_object(raw: str) -> dict[str, Any]:
    def reject(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        value = json.loads(raw, parse_constant=reject)
    except ValueError as exc:
        fail(f"error: --data is not valid JSON: {exc}")
    if not isinstance(value, dict):
        fail("error: --data must be a JSON object")
    return value


def append(
    conversation_id: Annotated[str, typer.Argument(help="Conversation id")],
    event_type: Annotated[
        str, typer.Argument(metavar="TYPE", help="Event type, e.g. MessagePosted")
    ],
    data: Annotated[str, typer.Option("--data", help="Payload as a JSON object")] = "{}",
    event_id: Annotated[
        str | None, typer.Option("--event-id", help="Idempotency key (UUID); default: new")
    ] = None,
    expected_version: Annotated[
        int | None, typer.Option("--expected-version", help="Fail unless the version is N")
    ] = None,
    leg: Annotated[str | None, typer.Option("--leg", help="Leg id")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Who caused the event")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Append one event; prints its position and global sequence."""
    payload = _parse_object(data)
    kwargs: dict[str, Any] = {"leg_id": leg, "actor": actor}
    if event_id is not None:
        try:
            kwargs["event_id"] = UUID(event_id)
        except ValueError:
            fail(f"error: --event-id {event_id!r} is not a UUID")
    with ledger_session() as store:
        result = store.append(
            conversation_id, NewEvent(event_type, payload, **kwargs), expected_version
        )
    if as_json:
        typer.echo(json.dumps(result.to_json()))
        return
    note = " (duplicate: already recorded, nothing appended)" if result.duplicate else ""
    console.print(
        f"{conversation_id}: position {result.position}, sequence {result.sequence}, "
        f"event {result.event_id}{note}"
    )


def schema(
    event_type: Annotated[
        str | None, typer.Argument(metavar="[TYPE]", help="One event type")
    ] = None,
) -> None:
    """Print the JSON Schema of every event type (or of one)."""
    if event_type is None:
        typer.echo(json.dumps(json_schemas(), indent=2, sort_keys=True))
        return
    model = guarded(lambda: model_for(event_type))
    typer.echo(json.dumps(model.model_json_schema(), indent=2, sort_keys=True))


audit_app = typer.Typer(help="Verify the hash chain; export conversations.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(
    conversation_id: Annotated[str | None, typer.Argument(help="Conversation id")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every conversation")] = False,
    file: Annotated[
        Path | None, typer.Option("--file", help="Verify an `audit export` file, no database")
    ] = None,
) -> None:
    """Recompute every hash. Exit 0 with a count when intact; exit 1 naming the
    conversation and the first position that does not verify."""
    chosen = (conversation_id is not None) + all_ + (file is not None)
    if chosen != 1:
        fail("error: give exactly one of CONVERSATION_ID, --all or --file", code=2)
    if file is not None:
        try:
            with file.open(encoding="utf-8") as lines:
                result = guarded(lambda: audit.verify_lines(lines))
        except OSError as exc:
            fail(f"error: cannot read {file}: {exc.strerror}")
        except UnicodeDecodeError:
            fail(f"error: {file} is not UTF-8 text")
        console.print(
            f"ok: {result.events} events in {result.conversations} conversation(s) verified "
            f"from {file}"
        )
        return
    with ledger_session(stored_form=True) as store:
        if all_:
            report = audit.survey_all(store)
            for broken in report.broken:
                typer.echo(f"broken: {broken}", err=True)
            checked = _verify_checkpoints(store)
            if report.broken or checked.problems:
                fail(
                    f"error: {len(report.broken)} of {report.conversations} conversation(s) "
                    f"do not verify; {len(checked.problems)} checkpoint problem(s)"
                )
            console.print(
                f"ok: {report.events} events in {report.conversations} conversation(s) "
                f"verified; {checked.checkpoints} checkpoint(s) verified"
            )
        else:
            assert conversation_id is not None
            count = audit.verify_conversation(store, conversation_id)
            console.print(f"ok: {count} events of conversation {conversation_id} verified")


def _verify_checkpoints(store: Ledger) -> checkpoint.CheckpointReport:
    """The signed checkpoints, when configured (always for an SQLite file database); one
    `broken:` line per conversation truncated or rewritten since the last checkpoint."""
    settings = config().ledger
    try:
        paths = checkpoint.configured_paths(settings.database_url, settings)
    except checkpoint.CheckpointError:
        return checkpoint.CheckpointReport(0, ())
    checked = checkpoint.verify_against(store, paths)
    for problem in checked.problems:
        typer.echo(f"broken: {problem}", err=True)
    return checked


@audit_app.command("checkpoint")
def audit_checkpoint(
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Survey every conversation from position 1 (default: only what is new "
            "since the newest checkpoint, plus each checkpointed head)",
        ),
    ] = False,
) -> None:
    """Sign a checkpoint of every conversation's head and the global log position (Ed25519,
    key and checkpoint log outside the database; see docs/integrity.md)."""
    settings = config().ledger
    paths = guarded(lambda: checkpoint.configured_paths(settings.database_url, settings))
    with ledger_session(stored_form=True) as store:
        signed, report = checkpoint.write_checkpoint(store, paths, full=full)
    for broken in report.broken:
        typer.echo(f"not checkpointed: {broken}", err=True)
    console.print(
        f"checkpoint {signed.number}: {len(signed.heads)} conversation head(s), global "
        f"sequence {signed.global_sequence}, key {signed.key_id}, written to {paths.log_file}"
    )


@audit_app.command("export")
def audit_export(
    conversation_id: Annotated[str, typer.Argument(help="Conversation id")],
) -> None:
    """Write the stored events, with hashes, as JSON Lines (verify with --file)."""
    with ledger_session(stored_form=True) as store:
        lines = list(audit.export_lines(store, conversation_id))
    sys.stdout.write("".join(line + "\n" for line in lines))


def register(app: typer.Typer) -> None:
    from threadline.app.commands.erase import erase
    from threadline.app.commands.privacy import privacy_app

    app.command("append")(append)
    app.command("erase")(erase)
    app.command("schema")(schema)
    app.add_typer(audit_app, name="audit")
    app.add_typer(privacy_app, name="privacy")
