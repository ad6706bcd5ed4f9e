"""A writer killed with SIGKILL in the middle of appending: after restart every acknowledged
event is there, the chain verifies, and retrying whatever was in flight appends each event
exactly once (SQLite file and PostgreSQL)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from tests.support.ledgers import crash_worker, message, started
from threadline.ledger import audit
from threadline.ledger.store import open_ledger


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_sigkill_mid_append_loses_nothing_acknowledged(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'crash.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("fresh_postgres_url")
    )
    with open_ledger(url) as store:
        store.append("crash", started())
    journal = tmp_path / "journal.txt"
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=crash_worker, args=(url, str(journal), ready))
    proc.start()
    assert ready.wait(60)
    time.sleep(0.2)
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(30)
    assert proc.exitcode == -signal.SIGKILL

    entries = [line.split() for line in journal.read_text().splitlines() if line.strip()]
    tried = [uuid.UUID(v) for k, v in entries if k == "try"]
    acked = {uuid.UUID(v) for k, v in entries if k == "ok"}
    assert len(acked) >= 6
    with open_ledger(url) as store:
        stored = [e.event_id for e in store.read("crash")[1:]]
        assert acked <= set(stored)
        assert audit.verify_conversation(store, "crash") == len(stored) + 1
        # The client retries everything it is not sure about: nothing is appended twice.
        for n, event_id in enumerate(tried):
            store.append("crash", message(f"crash {n}", event_id=event_id))
        final = [e.event_id for e in store.read("crash")[1:]]
        assert final == tried
        assert audit.verify_conversation(store, "crash") == len(tried) + 1
