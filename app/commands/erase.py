"""`threadline erase SUBJECT [--reason R] [--json]`: crypto-shred a data subject.

Prints what was shredded, naming the subject only by its keyed hash (the terminal
scrollback and CI logs must not collect the identifier being erased). Bad input: one line
on stderr, exit 2, nothing changed. No master key: exit 1.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from threadline.app.commands.ledger import console, fail, ledger_session
from threadline.ledger.erasure import erase_subject
from threadline.ledger.errors import InvalidEventError


def erase(
    subject: Annotated[
        str,
        typer.Argument(
            help="Identifier as recorded (visitor ref, identity subject, transport ref) "
            "or its bare form, e.g. +15551234567"
        ),
    ],
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why (a ticket number; no personal data)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Erase a data subject: destroy the data keys of every conversation linked to it and
    append SubjectErased to each. Idempotent."""
    with ledger_session() as store:
        try:
            report = erase_subject(store, subject, reason)
        except InvalidEventError as exc:
            fail(f"error: {exc}", code=2)
    if as_json:
        typer.echo(json.dumps(report.to_json()))
        return
    if not report.erased and not report.already_erased:
        console.print(f"nothing to erase: no conversation is linked to {report.subject_ref}")
        return
    if report.erased:
        console.print(
            f"erased {report.subject_ref} from {len(report.erased)} conversation(s): "
            + ", ".join(report.erased)
        )
    if report.already_erased:
        console.print(
            f"already erased in {len(report.already_erased)} conversation(s): "
            + ", ".join(report.already_erased)
        )
