"""The server's checkpoint job (ledger/checkpoint_schedule.py): it signs only when the log
advanced, only while it holds the lead, and a failing run is one warning line, not an
exception (the server's loop must carry on)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support.ledgers import message, started
from threadline.ledger import checkpoint
from threadline.ledger.checkpoint_schedule import CheckpointSchedule, SoleWriter
from threadline.ledger.store import open_ledger


class Standby:
    """Another replica holds the lock."""

    def lead(self) -> bool:
        return False

    def close(self) -> None:
        return None


def _paths(tmp_path: Path) -> checkpoint.CheckpointPaths:
    return checkpoint.CheckpointPaths(tmp_path / "cp.key", tmp_path / "cp.jsonl")


def test_signs_when_the_log_advanced_and_not_when_idle(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    with open_ledger(f"sqlite:///{tmp_path / 't.db'}") as ledger:
        schedule = CheckpointSchedule(ledger, paths, SoleWriter())
        schedule.run()  # an empty ledger: nothing to sign
        assert checkpoint.read_log(paths.log_file) == []
        ledger.append_batch("c1", [started(), message("one")])
        schedule.run()
        schedule.run()  # idle since: no second checkpoint
        (first,) = checkpoint.read_log(paths.log_file)
        assert first.heads["c1"][0] == 2
        ledger.append("c1", message("two"))
        schedule.run()
        assert [c.heads["c1"][0] for c in checkpoint.read_log(paths.log_file)] == [2, 3]
        assert schedule.written == 2


def test_a_standby_replica_writes_nothing(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    with open_ledger(f"sqlite:///{tmp_path / 't.db'}") as ledger:
        ledger.append_batch("c1", [started()])
        CheckpointSchedule(ledger, paths, Standby()).run()
    assert not paths.log_file.exists()
    assert not paths.key_file.exists()


def test_a_failed_run_is_one_warning_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    paths = checkpoint.CheckpointPaths(tmp_path / "cp.key", tmp_path / "no" / "cp.jsonl")
    with open_ledger(f"sqlite:///{tmp_path / 't.db'}") as ledger:
        ledger.append_batch("c1", [started()])
        schedule = CheckpointSchedule(ledger, paths, SoleWriter())
        with caplog.at_level(logging.WARNING, "threadline.ledger.checkpoint_schedule"):
            schedule.run()  # does not raise
    (record,) = caplog.records
    assert record.getMessage().startswith("signed checkpoint not written: CheckpointError: ")
    assert "\n" not in record.getMessage()
    assert record.exc_info is None
