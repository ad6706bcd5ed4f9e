"""Projections over a partitioned log (THREADLINE_LOG_PARTITIONS > 1): a runner stepping
while 8 writers append across the partitions ends with the same view as a rebuild, and
both equal the fold of the whole log (SQLite and a real PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ledgers import message, started
from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.settings import LedgerSettings
from threadline.ledger.store import Ledger, open_ledger
from threadline.projections.metrics import build_metrics
from threadline.projections.runner import Runner
from threadline.projections.views import MemoryMetricsView


@pytest.fixture(
    params=[
        pytest.param(("sqlite", 2), id="sqlite-n2"),
        pytest.param(("postgres", 4), id="postgres-n4", marks=pytest.mark.postgres),
    ]
)
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    backend, n = request.param
    url = (
        f"sqlite:///{tmp_path / 'l.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("fresh_postgres_url")
    )
    store = open_ledger(
        settings=LedgerSettings(database_url=url, log_partitions=n, privacy="off"),
        group_commit=False,
    )
    try:
        yield store
    finally:
        store.close()


def whole_log(ledger: Ledger) -> list[RecordedEvent]:
    out: list[RecordedEvent] = []
    while batch := ledger.read_all(after=out[-1].sequence if out else 0, limit=500):
        out += batch
    return out


def test_incremental_during_appends_equals_rebuild(ledger: Ledger) -> None:
    incremental = MemoryMetricsView()
    runner = Runner(ledger, incremental, batch_size=7)
    done = threading.Event()

    def write(w: int) -> None:
        for c in range(3):
            cid = f"w{w}-c{c}"
            ledger.append(cid, started())
            for i in range(4):
                ledger.append(cid, message(f"{i}"), expected_version=i + 1)

    def follow() -> None:
        while not done.is_set():
            runner.step()

    follower = threading.Thread(target=follow)
    follower.start()
    writers = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    follower.join()
    runner.catch_up()
    events = whole_log(ledger)
    assert len(events) == 8 * 3 * 5
    rebuilt = MemoryMetricsView()
    assert Runner(ledger, rebuilt).catch_up() == len(events)
    assert incremental.metrics() == rebuilt.metrics() == build_metrics(events)
    assert incremental.metrics().conversations == 24
    assert incremental.tracking().gaps == {}
