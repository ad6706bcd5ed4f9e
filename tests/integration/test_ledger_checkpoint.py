"""Issue 17, class 5: signed checkpoints. Cutting a conversation's newest event, or rewriting
it with a recomputed hash — together with its idempotency row, so the database agrees with
itself — passes every check inside the database; after `audit checkpoint` it is detected and
named by `audit verify --all`, on SQLite (sqlite3 bytes) and PostgreSQL (psycopg bytes). A
checkpoint signed with another key is named as forged."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from tests.support.ledgers import message, open_configured, started
from threadline.app.cli import build
from threadline.ledger import audit, canonical, checkpoint
from threadline.ledger.settings import LedgerSettings

Execute = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]
FORGED_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(autouse=True)
def _clear_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_PRIVACY", "off")


def _fill(url: str) -> None:
    with open_configured(url) as store:
        store.append_batch("c1", [started(), message("one"), message("two"), message("three")])
        store.append_batch("c2", [started(), message("other")])
        store.append_batch("c3", [started(), message("untouched")])


def _sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Execute]:
    path = tmp_path / "t.db"
    url = f"sqlite:///{path}"
    monkeypatch.setenv("THREADLINE_DATABASE_URL", url)
    _fill(url)

    def execute(sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(path)
        try:
            rows = con.execute(sql.replace("%s", "?"), args).fetchall()
            con.commit()
            return rows
        finally:
            con.close()

    return url, execute


def _postgres(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Execute]:
    monkeypatch.setenv("THREADLINE_DATABASE_URL", url)
    monkeypatch.setenv("THREADLINE_CHECKPOINT_KEY_FILE", str(tmp_path / "checkpoint.key"))
    monkeypatch.setenv("THREADLINE_CHECKPOINT_FILE", str(tmp_path / "checkpoints.jsonl"))
    _fill(url)

    def execute(sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with psycopg.connect(url, autocommit=True) as conn:
            cur = conn.execute(sql, args)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []

    return url, execute


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def tamperable(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, Execute]:
    if request.param == "sqlite":
        return _sqlite(tmp_path, monkeypatch)
    return _postgres(request.getfixturevalue("fresh_postgres_url"), tmp_path, monkeypatch)


def _truncate_consistently(execute: Execute, conversation_id: str = "c1", head: int = 4) -> None:
    """Deletes the conversation's newest event (at `head`) and its idempotency row."""
    execute(
        "DELETE FROM stored_events WHERE originator_id=%s AND originator_version=%s",
        (conversation_id, head),
    )
    execute(
        "DELETE FROM threadline_event_ids WHERE conversation_id=%s AND position=%s",
        (conversation_id, head),
    )


def _rewrite_consistently(execute: Execute) -> None:
    """Replaces c2's newest event by another one, chained and hashed correctly, and moves its
    idempotency row to the new event id."""
    ((state,),) = execute(
        "SELECT state FROM stored_events WHERE originator_id='c2' AND originator_version=2", ()
    )
    body = canonical.loads(bytes(state))
    body["event_id"] = FORGED_ID
    body["data"] = {**body["data"], "text": "forged"}
    del body["hash"]
    body["hash"] = canonical.sha256_hex(canonical.dumps(body))
    execute(
        "UPDATE stored_events SET state=%s WHERE originator_id='c2' AND originator_version=2",
        (canonical.dumps(body),),
    )
    execute(
        "UPDATE threadline_event_ids SET event_id=%s WHERE conversation_id='c2' AND position=2",
        (FORGED_ID,),
    )


def test_truncation_and_rewrite_after_a_checkpoint_are_named(
    tamperable: tuple[str, Execute],
) -> None:
    url, execute = tamperable
    runner = CliRunner()
    made = runner.invoke(build(), ["audit", "checkpoint"])
    assert made.exit_code == 0, made.stderr
    assert "checkpoint 1: 3 conversation head(s)" in made.stdout
    ok = runner.invoke(build(), ["audit", "verify", "--all"])
    assert ok.exit_code == 0, ok.stderr
    assert "1 checkpoint(s) verified" in ok.stdout
    # Growth after a checkpoint is fine.
    with open_configured(url) as store:
        store.append("c3", message("later"))
    assert runner.invoke(build(), ["audit", "verify", "--all"]).exit_code == 0

    _truncate_consistently(execute)
    _rewrite_consistently(execute)
    # The database agrees with itself: without the checkpoint nothing shows.
    with open_configured(url) as store:
        assert audit.survey_all(store).broken == ()
    result = runner.invoke(build(), ["audit", "verify", "--all"])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("broken:")]
    assert lines == [
        "broken: conversation c1: truncated: head at position 3, checkpoint 1 recorded position 4",
        "broken: conversation c2: position 2: rewritten: its hash differs from checkpoint 1",
    ]
    assert "2 checkpoint problem(s)" in result.stderr


def test_a_deleted_conversation_and_a_cut_global_log_are_named(
    tamperable: tuple[str, Execute],
) -> None:
    _, execute = tamperable
    runner = CliRunner()
    assert runner.invoke(build(), ["audit", "checkpoint"]).exit_code == 0
    execute("DELETE FROM stored_events WHERE originator_id='c3'", ())
    execute("DELETE FROM threadline_event_ids WHERE conversation_id='c3'", ())
    result = runner.invoke(build(), ["audit", "verify", "--all"])
    assert result.exit_code == 1
    assert "broken: conversation c3: missing; checkpoint 1 recorded it at position 2" in (
        result.stderr
    )
    assert "broken: global log: last sequence" in result.stderr


def test_a_checkpoint_signed_with_another_key_is_forged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, execute = _sqlite(tmp_path, monkeypatch)
    runner = CliRunner()
    assert runner.invoke(build(), ["audit", "checkpoint"]).exit_code == 0
    _truncate_consistently(execute)
    # The attacker covers the cut with a checkpoint of the new state, signed with their key.
    paths = checkpoint.configured_paths(url, LedgerSettings(database_url=url))
    attacker = checkpoint.create_key(tmp_path / "attacker.key")
    (first,) = checkpoint.read_log(paths.log_file)
    with open_configured(url) as store:
        report = audit.survey_all(store)
    unsigned = checkpoint.Checkpoint(
        number=2,
        created_at=first.created_at,
        global_sequence=report.last_sequence,
        heads=report.heads,
        prev=first.digest(),
        key_id=checkpoint.key_id_of(checkpoint.read_key(paths.key_file).public),
        signature="",
    )
    forged = checkpoint.sign(unsigned, attacker)
    with paths.log_file.open("ab") as out:
        out.write(forged.line() + b"\n")
    result = runner.invoke(build(), ["audit", "verify", "--all"])
    assert result.exit_code == 1
    assert "broken: checkpoint 2: signature does not verify with the checkpoint key (forged)" in (
        result.stderr
    )
    # And the forged log refuses further checkpoints rather than signing over it.
    again = runner.invoke(build(), ["audit", "checkpoint"])
    assert again.exit_code == 1
    assert "checkpoint 2: signature does not verify" in again.stderr


def test_postgres_needs_configured_checkpoint_files() -> None:
    settings = LedgerSettings(database_url="postgresql://u@h/db")
    with pytest.raises(checkpoint.CheckpointError, match="THREADLINE_CHECKPOINT_KEY_FILE"):
        checkpoint.configured_paths(settings.database_url, settings)


def test_a_new_checkpoint_is_not_signed_over_a_cut_tail(
    tamperable: tuple[str, Execute],
) -> None:
    """Else the next verify, which compares with the newest checkpoint, would pass."""
    _, execute = tamperable
    runner = CliRunner()
    assert runner.invoke(build(), ["audit", "checkpoint"]).exit_code == 0
    _truncate_consistently(execute)
    again = runner.invoke(build(), ["audit", "checkpoint"])
    assert again.exit_code == 1
    assert "the ledger no longer matches checkpoint 1, not signing over it: conversation c1: " in (
        again.stderr
    )
    result = runner.invoke(build(), ["audit", "verify", "--all"])
    assert "broken: conversation c1: truncated: head at position 3" in result.stderr
