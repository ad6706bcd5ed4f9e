"""The per-partition relay (streaming/partition_relay.py) on a real PostgreSQL with
THREADLINE_LOG_PARTITIONS = 4 and a real Kafka-protocol broker (Tansu): `threadline relay`
SIGKILLed mid-stream and restarted loses nothing, republishes at most each partition's
batch in flight, puts every event in the Kafka partition of its log partition in its
conversation's order, and the consumer's view counts nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from harness.streaming import GROUP_TIMING, read_topic, seed, wait_for
from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.partitions import partition_of
from threadline.ledger.settings import LedgerSettings
from threadline.ledger.store import Ledger, open_ledger
from threadline.projections.metrics import build_metrics
from threadline.streaming.checkpoint import open_checkpoint
from threadline.streaming.envelope import decode
from threadline.streaming.service import build_consumer, open_consumer_view
from threadline.streaming.settings import StreamSettings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[2]
N = 4
BATCH = 50


@pytest.fixture
def ledger(fresh_postgres_url: str) -> Iterator[Ledger]:
    with open_ledger(
        settings=LedgerSettings(database_url=fresh_postgres_url, log_partitions=N)
    ) as store:
        yield store


def all_events(ledger: Ledger) -> list[RecordedEvent]:
    out: list[RecordedEvent] = []
    while batch := ledger.read_all(after=out[-1].sequence if out else 0, limit=5000):
        out += batch
    return out


def test_relay_killed_mid_stream_loses_nothing_and_keeps_partitions_and_order(
    ledger: Ledger, fresh_postgres_url: str, kafka_bootstrap: str, kafka_topic: str
) -> None:
    seed(ledger, conversations=200, per_conversation=50)
    env = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    env.update(
        THREADLINE_DATABASE_URL=fresh_postgres_url,
        THREADLINE_LOG_PARTITIONS=str(N),
        THREADLINE_KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        THREADLINE_KAFKA_TOPIC=kafka_topic,
        THREADLINE_KAFKA_PARTITIONS="8",  # more Kafka partitions than log partitions is fine
        THREADLINE_RELAY_BATCH_SIZE=str(BATCH),
        PYTHONPATH=str(ROOT),
    )
    cmd = [sys.executable, "-m", "threadline.app.cli", "relay"]
    open_checkpoint(fresh_postgres_url).close()  # creates the table the test polls
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL, cwd=ROOT)
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:

        def positions() -> dict[int, int]:
            rows = conn.execute(
                "SELECT name, position FROM relay_checkpoints WHERE name LIKE 'relay.p%'"
            ).fetchall()
            return {int(str(name).removeprefix("relay.p")): int(str(pos)) for name, pos in rows}

        try:
            wait_for(lambda: sum(positions().values()) >= 1500, 90, "the relay to get going")
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        killed_at = positions()
        # event id → (log partition, partition sequence), from the ledger's own tables
        placed = {
            int(str(nid)): (int(str(p)), int(str(seq)))
            for p, seq, nid in conn.execute(
                "SELECT partition, seq, notification_id FROM threadline_log_partitions"
            ).fetchall()
        }
    assert 1500 <= sum(killed_at.values()) < 10_000  # really killed mid-stream
    assert sorted(killed_at) == list(range(N))
    assert all(pos > 0 for pos in killed_at.values())  # the partitions ran side by side
    assert "relay" not in killed_at  # no global checkpoint: nothing reads the global log

    done = subprocess.run(
        [*cmd, "--once"], env=env, capture_output=True, text=True, timeout=180, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "position 10000" in done.stdout

    records = read_topic(kafka_bootstrap, kafka_topic, 10_000, timeout_s=120)
    events = [decode(r.value) for r in records]
    counts = Counter(e.event_id for e in events)
    stored = all_events(ledger)
    assert set(counts) == {e.event_id for e in stored}  # nothing lost
    per_partition: Counter[int] = Counter()
    for r, e in zip(records, events, strict=True):
        p, seq = placed[e.sequence]
        assert p == partition_of(e.conversation_id, N)
        assert r.partition == p  # the Kafka partition is the log partition
        if counts[e.event_id] > 1:
            # republished: only what was published after that partition's checkpoint
            assert seq > killed_at[p]
            per_partition[p] += 1
    # at most each partition's batch in flight, counted twice (published + republished)
    assert all(n <= 2 * BATCH for n in per_partition.values())
    assert max(counts.values()) <= 2
    first_seen: dict[str, list[int]] = {}
    last: dict[str, int] = {}
    for e in events:
        seen = first_seen.setdefault(e.conversation_id, [])
        if e.position > last.get(e.conversation_id, 0):
            # a record either continues its conversation or repeats its republished tail
            assert e.position == last.get(e.conversation_id, 0) + 1
            seen.append(e.position)
            last[e.conversation_id] = e.position
    assert len(first_seen) == 200
    assert all(seen == list(range(1, 51)) for seen in first_seen.values())

    # The consumer (real group member, its view in PostgreSQL) drops the duplicates.
    s = StreamSettings(
        database_url=fresh_postgres_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic=kafka_topic,
        consumer_group=f"{kafka_topic}.metrics",
        **GROUP_TIMING,  # type: ignore[arg-type]
    )
    view = open_consumer_view(s)
    try:
        consumer = build_consumer(s, view)
        try:
            wait_for(
                lambda: consumer.poll_once() >= 0 and view.totals().events >= 10_000,
                120,
                "the consumer to catch up",
            )
        finally:
            consumer.close()
        assert consumer.stats.duplicates == len(events) - 10_000
        assert consumer.stats.held_back == 0
        assert view.totals().events == 10_000
        expected = build_metrics(stored).model_dump(mode="json")
        assert view.metrics().model_dump(mode="json") == expected
    finally:
        view.close()


def test_a_standby_relay_takes_over_each_partition_of_a_stopped_one(
    ledger: Ledger, fresh_postgres_url: str, kafka_bootstrap: str, kafka_topic: str
) -> None:
    """Each partition has its own leader lock: of two relays exactly one publishes a
    partition; when it stops, the other takes over that partition from its checkpoint."""
    from threadline.streaming.service import build_relay

    seed(ledger, conversations=40, per_conversation=5)
    s = StreamSettings(
        database_url=fresh_postgres_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic=kafka_topic,
        kafka_partitions=N,
        relay_batch_size=BATCH,
    )
    first, second = build_relay(s, ledger), build_relay(s, ledger)
    stops = [threading.Event(), threading.Event()]
    threads = [
        threading.Thread(target=r.run, args=(stop,), daemon=True)
        for r, stop in zip((first, second), stops, strict=True)
    ]
    try:
        threads[0].start()
        wait_for(lambda: first.stats.position == 200, 60, "the first relay to publish all")
        threads[1].start()
        time.sleep(2.5)  # the standby's workers try their locks once a second
        leaders = [
            {p for p, st in getattr(r, "partitions", {}).items() if st.leader}
            for r in (first, second)
        ]
        assert leaders == [set(range(N)), set()]
        stops[0].set()
        threads[0].join(30)
        first.close()  # its sessions end: PostgreSQL releases its advisory locks
        seed(ledger, conversations=40, per_conversation=5, prefix="later")
        wait_for(lambda: second.stats.position == 400, 60, "the standby to take over")
        assert all(st.leader for st in getattr(second, "partitions", {}).values())
    finally:
        for stop in stops:
            stop.set()
        for t in threads:
            if t.is_alive():
                t.join(30)
        first.close()
        second.close()
    events = [decode(r.value) for r in read_topic(kafka_bootstrap, kafka_topic, 400)]
    assert Counter(e.event_id for e in events) == Counter(e.event_id for e in all_events(ledger))
