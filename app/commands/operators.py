"""`threadline operators create|list|delete|passwd`: console operator accounts.

Passwords are prompted (hidden, twice) or read from standard input with `--password-stdin`
for scripts; never taken as an argument, where they would show in process lists and shell
history. `app.cli` mounts these with `register(app)`; `python -m threadline.app.commands.operators`
runs them alone.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from threadline.app.commands.ledger import config
from threadline.channels.console.errors import ConsoleError
from threadline.channels.console.operators import OperatorAccounts, check_tenant
from threadline.channels.console.wiring import open_accounts

operators_app = typer.Typer(
    help="Console operator accounts (argon2id-hashed passwords).", no_args_is_help=True
)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def _accounts() -> OperatorAccounts:
    settings = config()
    return open_accounts(settings.ledger.database_url, settings.console)


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="read the password from the first stdin line")
]


Tenant = Annotated[
    str,
    typer.Option(
        "--tenant",
        help="the tenant whose conversations the operator sees ('*': the console's tenant)",
    ),
]


@operators_app.command("create")
def create(name: str, password_stdin: PasswordStdin = False, tenant: Tenant = "*") -> None:
    """Create an operator who can sign in to /console and sees only their tenant."""
    try:
        check_tenant(tenant)
        password = _read_password(password_stdin)
        _accounts().create(name, password, tenant)
    except ConsoleError as exc:
        _fail(str(exc))
    typer.echo(f"operator {name} created (tenant {tenant})")


@operators_app.command("passwd")
def passwd(name: str, password_stdin: PasswordStdin = False) -> None:
    """Set a new password (signs the operator out everywhere)."""
    try:
        password = _read_password(password_stdin)
        _accounts().set_password(name, password)
    except ConsoleError as exc:
        _fail(str(exc))
    typer.echo(f"password of {name} changed")


@operators_app.command("delete")
def delete(name: str) -> None:
    """Remove an operator and end their sessions."""
    try:
        _accounts().delete(name)
    except ConsoleError as exc:
        _fail(str(exc))
    typer.echo(f"operator {name} deleted")


@operators_app.command("list")
def list_operators() -> None:
    """Names, tenants and creation times (never hashes)."""
    try:
        operators = _accounts().store.list_operators()
    except ConsoleError as exc:
        _fail(str(exc))
        return
    for operator in operators:
        typer.echo(f"{operator.name}\t{operator.tenant}\t{operator.created_at.isoformat()}")


def register(app: typer.Typer) -> None:
    app.add_typer(operators_app, name="operators")


def main() -> None:
    app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
    register(app)
    app()


if __name__ == "__main__":
    main()
