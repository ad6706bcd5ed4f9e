"""`threadline serve` signs checkpoints itself (THREADLINE_CHECKPOINT_INTERVAL_S): a real
server with a short interval writes one after appends (and none while the log is idle), and
`audit verify --all` then names the conversation whose newest event was deleted, with its
idempotency row, after the server stopped. A checkpoint log it cannot write is one line in
the server's log and the server keeps answering."""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.api_server import ApiServer, create_key
from tests.integration.test_ledger_checkpoint import Execute, _truncate_consistently
from threadline.app.cli import build
from threadline.ledger import checkpoint


def _execute(path: Path) -> Execute:
    def execute(sql: str, args: tuple[object, ...]) -> list[tuple[object, ...]]:
        con = sqlite3.connect(path)
        try:
            rows = con.execute(sql.replace("%s", "?"), args).fetchall()
            con.commit()
            return rows
        finally:
            con.close()

    return execute


def _post_messages(server: ApiServer, key: str, texts: list[str]) -> str:
    with server.client() as c:
        r = c.post("/v1/conversations", json={"channel": "chat"})
        assert r.status_code in (200, 201), r.text
        cid: str = r.json()["conversation_id"]
    with server.client(key) as c:
        for text in texts:
            event = {
                "event_id": str(uuid.uuid4()),
                "type": "MessagePosted",
                "data": {"role": "visitor", "text": text},
            }
            r = c.post(f"/v1/conversations/{cid}/events", json=event)
            assert r.status_code == 201, r.text
    return cid


def _wait_for(log_file: Path, cid: str, position: int) -> list[checkpoint.Checkpoint]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        written = checkpoint.read_log(log_file)
        if written and written[-1].heads.get(cid, (0, ""))[0] == position:
            return written
        time.sleep(0.2)
    raise AssertionError(f"no checkpoint of {cid} at position {position} in {log_file}")


def test_the_server_checkpoints_and_verify_names_a_deleted_last_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "threadline.db"
    url = f"sqlite:///{db}"
    execute = _execute(db)
    key = create_key(url, name="adapter")
    server = ApiServer(url, tmp_path / "server.log", THREADLINE_CHECKPOINT_INTERVAL_S="0.3")
    log_file = Path(f"{db}.checkpoints.jsonl")
    with server:
        cid = _post_messages(server, key, ["one", "two"])
        # ConversationStarted, LegOpened and the two messages.
        written = _wait_for(log_file, cid, 4)
        # Idle: several intervals pass and no checkpoint is added.
        time.sleep(1.5)
        assert len(checkpoint.read_log(log_file)) == len(written)
    log = server.log()
    assert "Traceback" not in log
    assert "signed checkpoint not written" not in log

    monkeypatch.setenv("THREADLINE_DATABASE_URL", url)
    monkeypatch.setenv("THREADLINE_PRIVACY", "off")  # verify reads stored bytes only
    runner = CliRunner()
    ok = runner.invoke(build(), ["audit", "verify", "--all"])
    assert ok.exit_code == 0, ok.stderr

    _truncate_consistently(execute, cid, 4)  # the last message and its idempotency row
    result = runner.invoke(build(), ["audit", "verify", "--all"])
    assert result.exit_code == 1
    assert f"broken: conversation {cid}: truncated: head at position 3, checkpoint" in (
        result.stderr
    )


def test_an_unwritable_checkpoint_log_is_one_log_line_and_the_server_carries_on(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'threadline.db'}"
    key = create_key(url, name="adapter")
    server = ApiServer(
        url,
        tmp_path / "server.log",
        THREADLINE_CHECKPOINT_INTERVAL_S="0.3",
        THREADLINE_CHECKPOINT_FILE=str(tmp_path / "missing-dir" / "checkpoints.jsonl"),
    )
    with server:
        _post_messages(server, key, ["one"])
        deadline = time.monotonic() + 20
        while "signed checkpoint not written" not in server.log():
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.2)
        _post_messages(server, key, ["still answering"])
    lines = [line for line in server.log().splitlines() if "signed checkpoint not written" in line]
    assert lines[0].endswith(
        "CheckpointError: cannot write the checkpoint file "
        f"{tmp_path / 'missing-dir' / 'checkpoints.jsonl'}: No such file or directory"
    ), lines[0]
    assert "Traceback" not in server.log()
