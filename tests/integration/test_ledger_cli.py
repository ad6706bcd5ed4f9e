"""The ledger part of the `threadline` CLI against a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.ledgers import open_configured
from threadline.app.cli import build

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("THREADLINE_DATABASE_URL", url)
    return url


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(build(), list(args))
    return result.exit_code, result.stdout, result.stderr


def start(conversation_id: str = "c1") -> None:
    code, _, err = run(
        "append", conversation_id, "ConversationStarted", "--data", '{"channel":"chat"}'
    )
    assert code == 0, err


def test_append_prints_position_and_sequence(db_url: str) -> None:
    start()
    code, out, _ = run(
        "append", "c1", "MessagePosted", "--data", '{"role":"visitor","text":"hi"}',
        "--leg", "leg-1", "--actor", "visitor", "--expected-version", "1",
    )  # fmt: skip
    assert code == 0
    assert "position 2" in out
    assert "sequence 2" in out
    (event,) = open_configured(db_url).read("c1", after=1)
    assert (event.leg_id, event.actor) == ("leg-1", "visitor")


def test_append_json_output_is_exactly_the_contract(db_url: str) -> None:
    start()
    event_id = "8c1f5a4e-0000-4000-8000-000000000001"
    args = ("append", "c1", "MessagePosted", "--data", '{"role":"agent","text":"x"}', "--json")
    code, out, _ = run(*args, "--event-id", event_id)
    assert code == 0
    first = json.loads(out)
    assert first == {"conversation_id": "c1", "event_id": event_id, "position": 2, "sequence": 2}
    code, out, _ = run(*args, "--event-id", event_id)
    assert code == 0
    assert json.loads(out) == first  # a repeat returns the original position


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("append", "c1", "Nope"), "unknown event type"),
        (("append", "c1", "MessagePosted", "--data", "{bad"), "not valid JSON"),
        (("append", "c1", "MessagePosted", "--data", "[1]"), "JSON object"),
        (("append", "c1", "MessagePosted", "--data", '{"role":"visitor"}'), "text"),
        (("append", "c1", "MessagePosted", "--data", '{"role":"x","text":"y","n":NaN}'), "NaN"),
        (("append", "c1", "LegClosed", "--data", '{"reason":"r"}', "--event-id", "nope"), "UUID"),
        (
            ("append", "c1", "LegClosed", "--data", '{"reason":"r"}', "--expected-version", "5"),
            "expected version 5, actual 1",
        ),
        (("append", "c9", "LegClosed", "--data", '{"reason":"r"}'), "does not exist"),
        (("append", "c1", "ConversationStarted", "--data", '{"channel":"chat"}'), "already"),
        (("append", "bad id", "ConversationStarted", "--data", '{"channel":"chat"}'), "invalid"),
        (("schema", "Nope"), "unknown event type"),
        (("replay", "c9"), "does not exist"),
        (("audit", "verify", "c9"), "does not exist"),
        (("audit", "export", "c9"), "does not exist"),
        (("audit", "verify"), "exactly one"),
        (("audit", "verify", "c1", "--all"), "exactly one"),
    ],
)
def test_errors_are_one_line_on_stderr_and_append_nothing(
    db_url: str, args: tuple[str, ...], message: str
) -> None:
    start()
    code, out, err = run(*args)
    assert code != 0
    assert message in err
    assert err.count("\n") == 1
    assert out == ""
    assert open_configured(db_url).max_sequence() == 1


def test_replay_lists_events_in_order(db_url: str) -> None:
    start()
    for text in ("one", "two", "three"):
        run(
            "append", "c1", "MessagePosted", "--data", json.dumps({"role": "visitor", "text": text})
        )
    code, out, _ = run("replay", "c1", "--json", "--upto", "3")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["position"] for e in events] == [1, 2, 3]
    assert [e["data"].get("text") for e in events[1:]] == ["one", "two"]
    code, out, _ = run("replay", "c1")
    assert code == 0
    assert "MessagePosted" in out


def test_audit_verify_export_and_verify_file(db_url: str, tmp_path: Path) -> None:
    start()
    start("c2")
    run("append", "c1", "MessagePosted", "--data", '{"role":"visitor","text":"x"}')
    code, out, _ = run("audit", "verify", "c1")
    assert code == 0
    assert "ok: 2 events of conversation c1 verified" in out
    code, out, _ = run("audit", "verify", "--all")
    assert code == 0
    assert "3 events in 2 conversation(s)" in out
    code, out, _ = run("audit", "export", "c1")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2
    assert all("hash" in json.loads(line) for line in lines)
    export = tmp_path / "c1.jsonl"
    export.write_text(out)
    code, out, _ = run("audit", "verify", "--file", str(export))
    assert code == 0
    assert "2 events" in out
    # Any change to the export breaks it at that position.
    edited = json.loads(lines[1])
    edited["data"]["text"] = "y"
    export.write_text(lines[0] + "\n" + json.dumps(edited) + "\n")
    code, _, err = run("audit", "verify", "--file", str(export))
    assert code == 1
    assert "conversation c1: position 2" in err
    code, _, err = run("audit", "verify", "--file", str(tmp_path / "missing.jsonl"))
    assert code == 1
    assert "cannot read" in err


def test_schema_prints_json_schemas(db_url: str) -> None:
    code, out, _ = run("schema")
    assert code == 0
    schemas = json.loads(out)
    assert schemas["MessagePosted"]["properties"]["role"]["enum"] == [
        "visitor",
        "agent",
        "human",
        "operator",
        "system",
    ]
    code, out, _ = run("schema", "LegOpened")
    assert code == 0
    assert json.loads(out)["title"] == "LegOpened"


def test_console_script_entry_point(db_url: str) -> None:
    """The real process: exit status and stderr as a shell sees them."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "threadline.app.cli", "append", "c1", "MessagePosted"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error: ")
    assert proc.stderr.count("\n") == 1
