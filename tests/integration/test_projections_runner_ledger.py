"""The metrics runner on a real ledger: SQLite files, and a runner process killed mid-commit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from threadline.ledger.envelope import NewEvent
from threadline.ledger.store import Ledger, open_ledger
from threadline.projections.metrics import build_metrics
from threadline.projections.runner import BackgroundRunner, Runner
from threadline.projections.view_sqlite import SQLiteMetricsView, open_sqlite_view


def read_everything(ledger: Ledger) -> list:  # type: ignore[type-arg]
    out, after = [], 0
    while batch := ledger.read_all(after=after, limit=500):
        out.extend(batch)
        after = batch[-1].sequence
    return out


def populate(ledger: Ledger, conversations: int, start: int = 0) -> None:
    for i in range(start, start + conversations):
        cid = f"conv-{i}"
        ledger.append(cid, NewEvent("ConversationStarted", {"channel": "chat"}))
        ledger.append(cid, NewEvent("LegOpened", {"channel": "chat"}, leg_id="c"))
        ledger.append(cid, NewEvent("HandoffOffered", {"handoff_id": "h"}))
        if i % 2 == 0:
            ledger.append(cid, NewEvent("HandoffAccepted", {"handoff_id": "h"}))
            ledger.append(cid, NewEvent("LegOpened", {"channel": "webrtc"}, leg_id="v"))
            ledger.append(
                cid,
                NewEvent(
                    "HandoffCompleted",
                    {"handoff_id": "h", "leg_id": "v", "first_utterance": "Hello"},
                    leg_id="v",
                ),
            )
        if i % 5 == 0:
            ledger.append(
                cid, NewEvent("IdentityVerified", {"method": "kba", "level": 1, "subject": "s"})
            )
            ledger.append(
                cid, NewEvent("IdentityVerified", {"method": "kba", "level": 1, "subject": "s"})
            )
        ledger.append(cid, NewEvent("CSATRecorded", {"score": 1 + i % 5}))


def wait_until(view: SQLiteMetricsView, position: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if view.tracking().position >= position:
            return True
        time.sleep(0.02)
    return False


def test_runner_follows_a_sqlite_ledger_and_wakes_on_appends(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = open_ledger(url)
    view = open_sqlite_view(str(tmp_path / "ledger.db"))  # same file, own tables
    try:
        populate(ledger, 6)
        background = BackgroundRunner(Runner(ledger, view), ledger.subscribe, poll_interval_s=30)
        background.start()
        try:
            assert wait_until(view, ledger.max_sequence())
            populate(ledger, 2, start=6)  # woken by the subscription, not the 30 s poll
            assert wait_until(view, ledger.max_sequence())
        finally:
            background.stop()
        expected = build_metrics(read_everything(ledger))
        assert view.metrics() == expected
        assert expected.conversations == 8
        assert expected.switched_conversations == 4
        assert expected.reverification_rate == 0.25  # conv-0 of 0, 2, 4, 6 re-verified
    finally:
        view.close()
        ledger.close()


CHILD = textwrap.dedent(
    """
    import os, sys
    from threadline.ledger.store import open_ledger
    from threadline.projections.runner import Runner
    from threadline.projections.view_sqlite import SQLiteMetricsView, open_sqlite_view

    ledger = open_ledger(sys.argv[1])
    view = open_sqlite_view(sys.argv[2])
    commits = [0]
    real = SQLiteMetricsView._insert_tracking

    def insert_then_die(self, c, tracking):
        commits[0] += 1
        if commits[0] == int(sys.argv[3]):
            # The view rows of this batch are written; the position is not; the transaction
            # never commits: the process dies here, as under kill -9.
            os._exit(17)
        real(self, c, tracking)

    SQLiteMetricsView._insert_tracking = insert_then_die
    Runner(ledger, view, batch_size=10).catch_up()
    """
)


def test_runner_killed_mid_commit_resumes_without_double_counting(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    ledger = open_ledger(f"sqlite:///{db}")
    try:
        populate(ledger, 12)
        env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
        child = subprocess.run(
            [sys.executable, "-c", CHILD, f"sqlite:///{db}", str(db), "4"],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert child.returncode == 17, child.stderr.decode()
        view = open_sqlite_view(str(db))
        try:
            assert view.tracking().position == 30  # three batches of 10 made it
            assert view.metrics().events == 30
            Runner(ledger, view, batch_size=10).catch_up()
            expected = build_metrics(read_everything(ledger))
            assert view.metrics() == expected
            assert view.metrics().events == ledger.max_sequence()
        finally:
            view.close()
    finally:
        ledger.close()
