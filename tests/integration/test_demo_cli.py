"""`threadline seed` and `threadline demo` as a user runs them: the real console script in a
subprocess, on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def threadline(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("THREADLINE_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "threadline.app.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def check_demo_output(out: str) -> None:
    voice_agent = [line for line in out.splitlines() if " webrtc " in line and "agent:" in line]
    assert voice_agent, out
    assert "January claim" in voice_agent[0]
    assert "already verified" in voice_agent[0]
    assert "MBR-100234" not in voice_agent[0]
    assert "-- switch to webrtc offered (compliance_step) --" in out
    assert "re-verification rate 0% (0 of 1 switched)" in out
    assert "handoffs offered 1, accepted 1, completed 1" in out
    assert "chat     agent: You're booked for" in out


def test_seed_then_demo_twice_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'threadline.db'}"
    seeded = threadline("seed", "--database-url", url)
    assert seeded.returncode == 0, seeded.stderr
    assert "demo member Dana Whitfield" in seeded.stdout
    assert threadline("seed", "--database-url", url).returncode == 0  # idempotent
    first = threadline("demo", "--database-url", url)
    assert first.returncode == 0, first.stderr
    check_demo_output(first.stdout)
    second = threadline("demo", "--database-url", url, env={"THREADLINE_SECRET": "d" * 40})
    assert second.returncode == 0, second.stderr
    check_demo_output(second.stdout)
    assert "whole store:\n  conversations 2, switched 2" in second.stdout
    assert "THREADLINE_SECRET is not set" not in second.stderr


@pytest.mark.postgres
def test_demo_on_postgresql(fresh_postgres_url: str) -> None:
    result = threadline("demo", "--database-url", fresh_postgres_url)
    assert result.returncode == 0, result.stderr
    check_demo_output(result.stdout)


def test_bad_database_url_is_one_line_and_nonzero() -> None:
    result = threadline("demo", "--database-url", "mysql://nope")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot open mysql database")
    assert len(result.stderr.strip().splitlines()) == 1
    unknown = threadline("demo", "--database-url", "memory://", "--voice", "telepathy")
    assert unknown.returncode == 1
    assert "unknown voice driver" in unknown.stderr
