"""The CLI a person meets first: `--version`, help without typer's `<str>`/`<bool>` labels,
event types registered explicitly at start-up, and the text helpers that fit 80 columns."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import threadline
from threadline.app.cli import build
from threadline.app.cli_help import label
from threadline.app.commands import render
from threadline.app.commands.conversations import parse_since

ROOT = Path(__file__).resolve().parents[2]
TYPE_LABEL = re.compile(r"<(str|bool|int|float|path|datetime|file)[^>]*>|<\w+\|")


def _commands(group: typer.Typer) -> list[list[str]]:
    """Every command path of the composed CLI, from the click tree typer builds."""
    found: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        found.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, [*path, name])

    walk(typer.main.get_command(group), [])
    return found


def test_version() -> None:
    result = CliRunner().invoke(build(), ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"threadline {threadline.__version__}"


def test_no_command_has_typer_type_labels_in_its_help() -> None:
    paths = _commands(build())
    assert ["conversations", "list"] in paths
    assert ["replay"] in paths
    for path in paths:
        result = CliRunner().invoke(build(), [*path, "--help"], env={"COLUMNS": "100"})
        assert result.exit_code == 0, (path, result.stderr)
        assert not TYPE_LABEL.search(result.stdout), (path, result.stdout)
    replay = CliRunner().invoke(build(), ["replay", "--help"], env={"COLUMNS": "100"}).stdout
    assert "INTEGER" in replay
    assert "[events|transcript|context|identity]" in replay
    assert "CONVERSATION_ID" in replay


@pytest.mark.parametrize(
    ("typer_label", "expected"),
    [("<str>", "TEXT"), ("<int>", "INTEGER"), ("<a|b>", "[a|b]"), ("<int range>", "INTEGER RANGE")],
)
def test_labels(typer_label: str, expected: str) -> None:
    assert label(typer_label) == expected


def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "THREADLINE_DATABASE_URL": "memory://"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


def test_importing_a_package_registers_nothing_start_up_registers_once() -> None:
    result = _python(
        "import threadline.channels.messaging.service\n"
        "from threadline.ledger.events import EVENT_TYPES\n"
        "assert 'MessageDeliveryUpdated' not in EVENT_TYPES\n"
        "from threadline.app.events import register_event_types\n"
        "register_event_types(); register_event_types()\n"
        "assert 'MessageDeliveryUpdated' in EVENT_TYPES\n"
        "from threadline.ledger import privacy\n"
        "assert 'MessageDeliveryUpdated' in privacy.declared()\n"
    )
    assert result.returncode == 0, result.stderr


def test_the_cli_and_the_bootstrap_register_at_start_up() -> None:
    cli = _python(
        "import sys; from threadline.app.cli import main\n"
        "sys.argv = ['threadline', 'schema', 'MessageDeliveryUpdated']\n"
        "main()\n"
    )
    assert cli.returncode == 0, cli.stderr
    assert '"provider_message_id"' in cli.stdout
    boot = _python(
        "import os; os.environ['THREADLINE_SECRET'] = 'x' * 40\n"
        "from threadline.ledger.events import EVENT_TYPES\n"
        "from threadline.app.bootstrap import bootstrap\n"
        "assert 'MessageDeliveryUpdated' not in EVENT_TYPES\n"
        "services = bootstrap(); services.close()\n"
        "assert 'MessageDeliveryUpdated' in EVENT_TYPES\n"
    )
    assert boot.returncode == 0, boot.stderr


def test_fit_and_wrap() -> None:
    assert render.fit("abcdef", 4) == "abc…"
    assert render.fit("abc", 4) == "abc"
    assert render.fit("abcdef", None) == "abcdef"
    lines = render.wrap("   12 head ", "word " * 40, 40)
    assert len(lines) > 1
    assert all(len(line) <= 40 for line in lines)
    assert lines[1].startswith(" " * len("   12 head "))
    assert lines[1].strip()


def test_since() -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    assert parse_since("2h", now) == datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    assert parse_since("7d", now) == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert parse_since("2026-12-01", now) == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_since("2026-12-01T10:00+01:00", now).hour == 10
    with pytest.raises(typer.Exit):
        parse_since("yesterday", now)
