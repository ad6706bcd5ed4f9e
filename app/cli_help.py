"""Help that reads like a Unix tool's: `--tenant TEXT`, `--as [events|transcript]`, flags
without a type, arguments named in capitals; never typer's `<bool>`/`<str>` labels.

`TidyGroup` is the root command's class: typer builds the whole command tree before the
root's constructor runs, so the constructor walks it once and relabels every parameter.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

# typer's type labels → the words click has always printed.
_KINDS = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "FLOAT",
    "bool": "BOOLEAN",
    "path": "PATH",
    "file": "FILE",
    "directory": "DIRECTORY",
    "datetime": "DATETIME",
}


class _Option(TyperOption):
    def display_type_rich(self, ctx: typer.Context) -> str | None:  # type: ignore[override]
        if self.is_flag or self.count:
            return None
        if self.metavar is not None:
            return self.metavar
        return label(super().display_type_rich(ctx) or "")


class _Argument(TyperArgument):
    def display_type_rich(self, ctx: typer.Context) -> str | None:  # type: ignore[override]
        return None  # the name column already shows it (in capitals)


def label(typer_label: str) -> str:
    """`<str>` → TEXT, `<a|b>` → [a|b], `<int range>` → INTEGER RANGE."""
    inner = typer_label.strip("<>")
    if "|" in inner:
        return f"[{inner}]"
    words = inner.split(" ", 1)
    head = _KINDS.get(words[0].lower(), words[0].upper())
    return " ".join([head, *(w.upper() for w in words[1:])])


def tidy(command: Any) -> None:
    """Relabels the parameters of `command` and of every command below it."""
    ctx = typer.Context(command)
    params = [*command.params]
    help_option = command.get_help_option(ctx)
    if help_option is not None:
        params.append(help_option)
    for param in params:
        if isinstance(param, TyperArgument) and not isinstance(param, _Argument):
            if param.metavar is None and param.name:
                param.metavar = param.name.upper()
            param.__class__ = _Argument
        elif isinstance(param, TyperOption) and not isinstance(param, _Option):
            param.__class__ = _Option
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)


class TidyGroup(TyperGroup):
    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        tidy(self)
