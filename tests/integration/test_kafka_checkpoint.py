"""The relay checkpoint on PostgreSQL (contract, one leader), and the CLI around it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from eventsourcing.persistence import IntegrityError

from harness.streaming import seed, wait_for
from threadline.ledger.store import open_ledger
from threadline.projections.views import Batch, TrackingState
from threadline.streaming.checkpoint_postgres import PostgresCheckpoint

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


def test_postgres_checkpoint_contract(fresh_postgres_url: str) -> None:
    cp = PostgresCheckpoint(fresh_postgres_url)
    try:
        assert cp.tracking() == TrackingState()
        cp.record(Batch(events=[], position=10, new_gaps={4: 1.5, 6: 2.0}))
        assert cp.tracking() == TrackingState(10, {4: 1.5, 6: 2.0})
        with pytest.raises(IntegrityError):
            cp.record(Batch(events=[], position=9))
        with pytest.raises(IntegrityError):
            cp.record(Batch(events=[], filled=[5]))
        cp.record(Batch(events=[], position=12, filled=[4], dropped=[6]))
        again = PostgresCheckpoint(fresh_postgres_url)  # durable: a new process sees it
        assert again.tracking() == TrackingState(12, {})
        again.close()
        cp.reset()
        assert cp.tracking() == TrackingState()
    finally:
        cp.close()


def test_only_one_relay_leads_and_a_standby_takes_over(fresh_postgres_url: str) -> None:
    first, second = PostgresCheckpoint(fresh_postgres_url), PostgresCheckpoint(fresh_postgres_url)
    other = PostgresCheckpoint(fresh_postgres_url, name="other-topic")
    try:
        assert first.lead()
        assert not second.lead()
        assert other.lead()  # a relay for another checkpoint name is independent
        first.close()  # the leader dies: its session, and so its lock, goes
        wait_for(second.lead, 10, "the standby to take over")
    finally:
        for cp in (first, second, other):
            cp.close()


def _cli(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    base.update(THREADLINE_DATABASE_URL=url, PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        [sys.executable, "-m", "threadline.app.cli", *args],
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_projections_status_shows_relay_and_consumer_lag(fresh_postgres_url: str) -> None:
    ledger = open_ledger(fresh_postgres_url)
    seed(ledger, conversations=4, per_conversation=5)
    ledger.close()
    cp = PostgresCheckpoint(fresh_postgres_url)
    cp.record(Batch(events=[], position=15))
    cp.close()
    done = _cli(
        fresh_postgres_url,
        "projections",
        "status",
        "--json",
        THREADLINE_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9",
    )
    assert done.returncode == 0, done.stderr
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert rows["kafka.relay"]["position"] == 15
    assert rows["kafka.relay"]["lag"] == 5
    assert rows["kafka.consumer"]["lag"] == 20
    assert "metrics" in rows
    # Without Kafka configured, status is what it was.
    plain = _cli(fresh_postgres_url, "projections", "status", "--json")
    assert plain.returncode == 0, plain.stderr
    assert {r["name"] for r in json.loads(plain.stdout)} == {"metrics"}


def test_bad_settings_are_one_line_and_exit_non_zero(fresh_postgres_url: str) -> None:
    done = _cli(fresh_postgres_url, "relay", "--once", THREADLINE_KAFKA_PARTITIONS="0")
    assert done.returncode == 2  # a configuration error, refused before any command runs
    assert done.stderr.strip().startswith("error: invalid setting THREADLINE_KAFKA_PARTITIONS")
    assert len(done.stderr.strip().splitlines()) == 1
    done = _cli("mysql://nope", "relay", "--once")
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
