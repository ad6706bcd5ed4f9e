"""Ledger benchmark: `python -m benchmarks.ledger [--backend sqlite|postgres|all] [--quick]`.

Per backend, in one run (these machines are noisy, so only same-run ratios mean anything):

1. Append: one event per append, one thread, fsync on. Threadline `Ledger.append` (with
   expected version) against raw eventsourcing (its ApplicationRecorder inserting a
   StoredEvent of the same size; on PostgreSQL both its LOCK TABLE path and its DB-function
   path) and raw driver inserts (sqlite3 / psycopg, one row per transaction). appends/s and
   p50/p99 latency.
2. Replay: read a 1,000-event conversation and fold it into the agent context, with 10k and
   with 1M events in the store (flatness ratio). The conversation's events are scattered
   through the store, as they would be in production (appended between other traffic).

PostgreSQL: a throwaway cluster (harness/postgres.py) unless
TL_BENCH_POSTGRES_URL names a server. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eventsourcing.persistence import StoredEvent  # noqa: E402

from benchmarks.report import Figure, emit  # noqa: E402
from threadline.ledger.canonical import GENESIS_HASH  # noqa: E402
from threadline.ledger.envelope import NewEvent  # noqa: E402
from threadline.ledger.recorders import EventIdRecord  # noqa: E402
from threadline.ledger.records import Draft, draft, seal, timestamp  # noqa: E402
from threadline.ledger.store import Ledger, open_ledger  # noqa: E402

TEXT = "I'd like to change the delivery address on my order, it is 4711-22 from last week."
STATE = b'{"data":{"role":"visitor","text":"' + TEXT.encode() + b'"}' + b"x" * 420 + b"}"


def started() -> NewEvent:
    return NewEvent("ConversationStarted", {"channel": "chat"})


def message(i: int) -> NewEvent:
    return NewEvent(
        "MessagePosted",
        {"role": "visitor" if i % 2 else "agent", "text": f"{TEXT} #{i}"},
        leg_id="leg-1",
        actor="bench",
    )


# -- measuring -------------------------------------------------------------------------------


class Result:
    def __init__(self, name: str, latencies_ns: list[int], cpu_ns: int = 0) -> None:
        self.name = name
        self.n = len(latencies_ns)
        total = sum(latencies_ns) / 1e9
        self.rate = self.n / total
        # CPU time of the calling thread (SQLite's work included, a server's not): less
        # disturbed than wall time by other tenants' fsyncs on a shared disk.
        self.cpu_us = cpu_ns / self.n / 1e3
        ordered = sorted(latencies_ns)
        self.p50_ms = ordered[len(ordered) // 2] / 1e6
        self.p99_ms = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1e6


Op = Callable[[int], object]


def interleaved(contenders: list[tuple[str, Op]], n: int, rounds: int = 20) -> list[Result]:
    """Runs every contender's op n times, in `rounds` alternating slices, so that drift in
    machine load (these machines are shared) hits all contenders alike."""
    for _, op in contenders:
        for i in range(20):  # warm-up: connections, prepared statements, caches
            op(-1 - i)
    latencies: dict[str, list[int]] = {name: [] for name, _ in contenders}
    cpu = dict.fromkeys(latencies, 0)
    per_round = max(1, n // rounds)
    i = 0
    for _ in range(rounds):
        for name, op in contenders:
            samples = latencies[name]
            c0 = time.thread_time_ns()
            for k in range(per_round):
                t0 = time.perf_counter_ns()
                op(i + k)
                samples.append(time.perf_counter_ns() - t0)
            cpu[name] += time.thread_time_ns() - c0
        i += per_round
    return [Result(name, latencies[name], cpu[name]) for name, _ in contenders]


def report_appends(backend: str, results: list[Result]) -> None:
    """Prints each contender, and Threadline's time per append relative to the baselines."""
    print(f"\n[{backend}] append, one event per transaction, 1 thread (interleaved rounds)")
    print(f"  {'':44} {'appends/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'cpu us':>8}")
    for r in results:
        print(f"  {r.name:44} {r.rate:10.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.cpu_us:8.0f}")
    ours = results[0]
    for r in results[1:]:
        print(
            f"  threadline time per append vs {r.name}: {r.rate / ours.rate:.2f}x"
            f" (cpu {ours.cpu_us / r.cpu_us:.2f}x)"
        )
    # The goal names "the recorder"; on PostgreSQL eventsourcing has two insert
    # paths and its DB-function one is the faster, so both are reported.
    for r in results:
        if r.name.endswith("ApplicationRecorder") or r.name.endswith("ENABLE_DB_FUNCTIONS"):
            suffix = "" if r.name.endswith("ApplicationRecorder") else " (vs DB function)"
            emit(
                Figure(
                    f"ledger append, 1 thread, {backend}{suffix}",
                    1000 / ours.rate,
                    "ms",
                    baseline=1000 / r.rate,
                    baseline_name=r.name,
                    ratio_max=1.1,
                )
            )


RECORDER_INSERT = "threadline recorder insert (event + id)"

# -- append benchmarks -----------------------------------------------------------------------


def threadline_op(stack: ExitStack, url: str) -> Op:
    ledger = stack.enter_context(open_ledger(url, group_commit=False))
    cid = f"bench-{uuid.uuid4().hex}"
    version = ledger.append(cid, started()).position

    def op(i: int) -> None:
        nonlocal version
        version = ledger.append(cid, message(i), expected_version=version).position

    return op


def recorder_op(recorder: Any) -> Op:
    """eventsourcing's recorder inserting a ready StoredEvent of the same size."""
    cid = f"es-{uuid.uuid4().hex}"
    position = 0

    def op(i: int) -> None:
        nonlocal position
        position += 1
        recorder.insert_events([StoredEvent(cid, position, "MessagePosted", STATE)])

    return op


def ledger_recorder_op(stack: ExitStack, url: str) -> Op:
    """Threadline's own recorder inserting a ready event and its id row (no drafting,
    sealing or encryption): the storage part of `Ledger.append`, to tell it from the
    Python part."""
    ledger = stack.enter_context(open_ledger(url, group_commit=False))
    cid = f"rec-{uuid.uuid4().hex}"
    position = 0

    def op(i: int) -> None:
        nonlocal position
        position += 1
        record = EventIdRecord(str(uuid.uuid4()), cid, position, "0" * 64)
        ledger.recorder.insert_events(
            [StoredEvent(cid, position, "MessagePosted", STATE)], event_ids=[record]
        )

    return op


def application_op(stack: ExitStack, env: dict[str, str]) -> Op:
    """eventsourcing's Application: an aggregate event saved per append ("one save per
    event"), through its mapper, JSON transcoder and recorder."""
    from eventsourcing.application import Application

    from benchmarks.es_aggregate import Conversation

    app: Application[Any] = Application(env=env)
    stack.callback(app.close)
    conversation = Conversation()
    app.save(conversation)

    def op(i: int) -> None:
        conversation.post("visitor" if i % 2 else "agent", f"{TEXT} #{i}")
        app.save(conversation)

    return op


def sqlite_raw_op(stack: ExitStack, path: Path) -> Op:
    con = sqlite3.connect(path, isolation_level=None)
    stack.callback(con.close)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(
        "CREATE TABLE IF NOT EXISTS raw_events (id INTEGER PRIMARY KEY, conv TEXT, "
        "pos INTEGER, data BLOB, UNIQUE (conv, pos))"
    )
    cid = uuid.uuid4().hex

    def op(i: int) -> None:
        con.execute("BEGIN")
        con.execute("INSERT INTO raw_events (conv, pos, data) VALUES (?,?,?)", (cid, i, STATE))
        con.execute("COMMIT")

    return op


def postgres_raw_op(stack: ExitStack, url: str) -> Op:
    import psycopg
    from psycopg.types.json import Jsonb

    conn = stack.enter_context(psycopg.connect(url, autocommit=True))
    conn.execute(
        "CREATE TABLE IF NOT EXISTS raw_events (id bigserial PRIMARY KEY, conv text, "
        "pos bigint, data jsonb, UNIQUE (conv, pos))"
    )
    cid = uuid.uuid4().hex
    doc = {"role": "visitor", "text": TEXT, "pad": "x" * 420}

    def op(i: int) -> None:
        conn.execute(
            "INSERT INTO raw_events (conv, pos, data) VALUES (%s, %s, %s)",
            (cid, i, Jsonb(doc)),
            prepare=True,
        )

    return op


def concurrent_rate(threads: int, per_thread: int, op: Callable[[int, int], object]) -> float:
    """Appends/s of `threads` threads each calling op(thread, i) `per_thread` times."""
    import threading

    barrier = threading.Barrier(threads + 1)

    def work(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            op(t, i)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    return threads * per_thread / (time.perf_counter() - t0)


def threadline_concurrent(url: str, group: bool, threads: int, per_thread: int) -> float:
    with open_ledger(url, group_commit=group) as ledger:
        cids = [f"conc-{uuid.uuid4().hex}" for _ in range(threads)]
        for cid in cids:
            ledger.append(cid, started())
        versions = dict.fromkeys(cids, 1)

        def op(t: int, i: int) -> None:
            cid = cids[t]
            versions[cid] = ledger.append(cid, message(i), versions[cid]).position

        return concurrent_rate(threads, per_thread, op)


def concurrent_appends(
    backend: str, url: str, es_recorder: Any, threads: int = 8, per_thread: int = 100
) -> None:
    print(f"\n[{backend}] append, {threads} threads, one conversation each")
    rates = {
        group: threadline_concurrent(url, group, threads, per_thread) for group in (False, True)
    }
    es_ids = [f"es-conc-{uuid.uuid4().hex}" for _ in range(threads)]

    def es_op(t: int, i: int) -> None:
        es_recorder.insert_events([StoredEvent(es_ids[t], i + 1, "MessagePosted", STATE)])

    es_rate = concurrent_rate(threads, per_thread, es_op)
    print(f"  {'eventsourcing recorder (baseline)':44} {es_rate:10.0f} appends/s")
    print(
        f"  {'threadline, one transaction per append':44} {rates[False]:10.0f} appends/s"
        f"   {rates[False] / es_rate:5.2f}x baseline"
    )
    print(
        f"  {'threadline, group commit':44} {rates[True]:10.0f} appends/s"
        f"   {rates[True] / es_rate:5.2f}x baseline"
    )


# -- replay / flatness -----------------------------------------------------------------------


def bulk_insert(ledger: Ledger, cid: str, template: list[Draft]) -> None:
    """Bulk-load path for the filler conversations: validated drafts are reused (with fresh
    event ids) and sealed into a valid hash chain, then inserted in one recorder call,
    skipping the per-append checks that the store does for real appenders."""
    recorded_at = timestamp(datetime.now(UTC))
    prev = GENESIS_HASH
    sealed = []
    for position, item in enumerate(template, start=1):
        s = seal(
            cid,
            position,
            prev,
            replace(item, event_id=uuid.uuid4()),
            recorded_at,
            ledger.codec,
        )
        sealed.append(s)
        prev = s.hash
    ledger.recorder.insert_events(
        [s.stored for s in sealed],
        event_ids=[
            EventIdRecord(str(s.draft.event_id), cid, s.stored.originator_version, s.draft.digest)
            for s in sealed
        ],
    )


def fill(ledger: Ledger, total: int, target: str, target_events: int = 1000) -> float:
    """Fills the store with `total` events. The target conversation gets its events in 100
    chunks of ~10, each after an equal share of filler conversations, so that at any store
    size it is spread evenly through the whole store, as it would be in production."""
    t0 = time.perf_counter()
    ledger.append(target, started())
    chunks = 100
    per_chunk = (target_events - 1) // chunks
    segment = (total - target_events) // chunks
    size = max(1, min(500, segment))
    template = [draft("template", started())] + [
        draft("template", message(i)) for i in range(size - 1)
    ]
    appended = 1
    for c in range(chunks):
        left = segment
        while left > 0:
            bulk_insert(ledger, f"fill-{uuid.uuid4().hex}", template[: min(size, left)])
            left -= size
        k = per_chunk if c < chunks - 1 else target_events - appended
        ledger.append_batch(target, [message(i) for i in range(k)])
        appended += k
        if c % 10 == 9:
            print(f"    ... {(c + 1) * (segment + per_chunk):,} events", flush=True)
    return time.perf_counter() - t0


def replay_once(ledger: Ledger, target: str) -> tuple[float, float]:
    """ms of `read` and of `read` + context fold."""
    from threadline.projections.context import build_context

    t0 = time.perf_counter()
    events = ledger.read(target)
    t1 = time.perf_counter()
    build_context(events)
    t2 = time.perf_counter()
    assert len(events) == 1000, len(events)
    return (t1 - t0) * 1000, (t2 - t0) * 1000


def flatness(
    backend: str, make_url: Callable[[str], str], small: int, large: int, repeats: int = 41
) -> None:
    """Fills a small and a large store, then replays from them alternately (so that load
    drift on a shared machine hits both alike) and compares medians (warm caches)."""
    if not large:
        return
    print(f"\n[{backend}] replay of a 1,000-event conversation (median of {repeats}, warm)")
    with ExitStack() as stack:
        ledgers = {}
        for total in (small, large):
            ledger = stack.enter_context(open_ledger(make_url(f"flat{total}"), group_commit=False))
            print(f"  filling {total:,} events ...", flush=True)
            seconds = fill(ledger, total, "target")
            assert ledger.max_sequence() >= total
            print(f"  filled in {seconds:.0f} s", flush=True)
            ledgers[total] = ledger
        samples: dict[int, list[tuple[float, float]]] = {small: [], large: []}
        for _ in range(repeats + 2):
            for total, ledger in ledgers.items():
                samples[total].append(replay_once(ledger, "target"))
        medians = {}
        for total in (small, large):
            runs = samples[total][2:]  # the first rounds warm the caches
            read = statistics.median(r for r, _ in runs)
            fold = statistics.median(f for _, f in runs)
            medians[total] = (read, fold)
            print(
                f"  {total:>9,} events in store: read {read:6.2f} ms, "
                f"read + context fold {fold:6.2f} ms"
            )
    (r_small, f_small), (r_large, f_large) = medians[small], medians[large]
    print(
        f"  flatness {large:,} vs {small:,}: read {r_large / r_small:.2f}x, "
        f"read + fold {f_large / f_small:.2f}x"
    )
    emit(
        Figure(
            f"replay 1,000 events → agent context, {large:,} stored, {backend}",
            f_large,
            "ms",
            baseline=f_small,
            baseline_name=f"same, {small:,} stored",
            goal_max=5.0,
            ratio_max=1.2,
        )
    )


# -- backends --------------------------------------------------------------------------------


def run_sqlite(n: int, small: int, large: int) -> None:
    from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as tmp, ExitStack() as stack:
        d = Path(tmp)
        datastore = SQLiteDatastore(str(d / "es.db"), originator_id_type="text")
        stack.callback(datastore.close)
        recorder = SQLiteApplicationRecorder(datastore)
        recorder.create_table()
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(d / "app.db")}
        contenders = [
            ("threadline Ledger.append", threadline_op(stack, f"sqlite:///{d / 'tl.db'}")),
            (RECORDER_INSERT, ledger_recorder_op(stack, f"sqlite:///{d / 'rec.db'}")),
            ("eventsourcing Application.save", application_op(stack, env)),
            ("eventsourcing SQLiteApplicationRecorder", recorder_op(recorder)),
            ("raw sqlite3 INSERT", sqlite_raw_op(stack, d / "raw.db")),
        ]
        report_appends("sqlite", interleaved(contenders, n))
        concurrent_appends("sqlite", f"sqlite:///{d / 'tl.db'}", recorder)
    flatness_sqlite(small, large)


def flatness_sqlite(small: int, large: int) -> None:
    if not large:
        return
    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as tmp:
        flatness("sqlite", lambda name: f"sqlite:///{Path(tmp) / name}.db", small, large)


@contextmanager
def postgres_server() -> Iterator[Callable[[str], str]]:
    """Yields `make_url(database_name)`."""
    existing = os.environ.get("TL_BENCH_POSTGRES_URL")
    if existing:
        import psycopg

        def make_existing(name: str) -> str:
            db = f"bench_{name}_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(existing, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{db}"')
            return existing.rsplit("/", 1)[0] + "/" + db

        yield make_existing
        return
    from harness.postgres import PostgresCluster

    with PostgresCluster() as cluster:
        yield lambda name: cluster.create_database(f"bench_{name}")


def run_postgres(n: int, small: int, large: int) -> None:
    from eventsourcing.postgres import PostgresApplicationRecorder
    from psycopg.conninfo import conninfo_to_dict

    from threadline.ledger.postgres import datastore_from_url

    with postgres_server() as make_url:
        url = make_url("append")
        with ExitStack() as stack:
            recorders = {}
            for functions in (False, True):
                datastore = datastore_from_url(url)
                stack.callback(datastore.close)
                datastore.enable_db_functions = functions
                recorder = PostgresApplicationRecorder(
                    datastore, events_table_name=f"es_{functions}"
                )
                recorder.create_table()
                recorders[functions] = recorder
            conninfo = conninfo_to_dict(make_url("app"))
            env = {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": str(conninfo["dbname"]),
                "POSTGRES_HOST": str(conninfo["host"]),
                "POSTGRES_PORT": str(conninfo["port"]),
                "POSTGRES_USER": str(conninfo["user"]),
                "POSTGRES_PASSWORD": str(conninfo["password"]),
            }
            contenders = [
                ("threadline Ledger.append", threadline_op(stack, url)),
                (RECORDER_INSERT, ledger_recorder_op(stack, make_url("recorder"))),
                ("eventsourcing Application.save", application_op(stack, env)),
                ("eventsourcing PostgresApplicationRecorder", recorder_op(recorders[False])),
                ("eventsourcing ... ENABLE_DB_FUNCTIONS", recorder_op(recorders[True])),
                ("raw psycopg INSERT (jsonb)", postgres_raw_op(stack, url)),
            ]
            report_appends("postgres", interleaved(contenders, n))
            # Concurrency baseline: eventsourcing's default (LOCK TABLE) path, which keeps
            # the global log gap-free as ours does.
            concurrent_appends("postgres", url, recorders[False])
        flatness("postgres", make_url, small, large)


def partitions_levels() -> list[str]:
    from benchmarks.partitions import LEVELS

    return list(LEVELS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--appends", type=int, default=2000, help="appends per contender")
    parser.add_argument("--quick", action="store_true", help="100k instead of 1M events")
    parser.add_argument("--no-replay", action="store_true", help="appends only")
    # -- issue 18: partitioned log (benchmarks/partitions.py) --
    parser.add_argument("--partitions", help="e.g. 1,2,4: only the partitioned-log benchmark")
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0, help="per count and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--levels",
        help="comma-separated, of: "
        + ", ".join([*partitions_levels(), "pgbench"])
        + " (default append,insert)",
    )
    parser.add_argument(
        "--pg-setting",
        action="append",
        default=[],
        help="name=value, compared with the default in the same rounds (repeatable)",
    )
    parser.add_argument("--waits", action="store_true", help="sample pg_stat_activity wait events")
    parser.add_argument(
        "--pgbench-variants",
        default="built",
        help="for --levels pgbench, of: built, general, async-notify, no-notify, scalar",
    )
    parser.add_argument(
        "--pgbench-modes", default="simple,prepared", help="for --levels pgbench: -M modes"
    )
    args = parser.parse_args()
    if args.partitions:
        from benchmarks import partitions

        levels = args.levels.split(",") if args.levels else None
        with postgres_server() as make_url:
            counts = [int(n) for n in args.partitions.split(",")]
            if levels and "pgbench" in levels:
                from benchmarks import partitions_pgbench

                levels.remove("pgbench")
                partitions_pgbench.run(
                    make_url,
                    counts,
                    args.writers,
                    seconds=args.seconds,
                    rounds=args.rounds,
                    variants=args.pgbench_variants.split(","),
                    modes=args.pgbench_modes.split(","),
                    waits=args.waits,
                )
                if not levels:
                    return
            partitions.run(
                make_url,
                counts,
                args.writers,
                seconds=args.seconds,
                rounds=args.rounds,
                levels=levels,
                settings=["", *args.pg_setting] if args.pg_setting else None,
                waits=args.waits,
            )
        return
    # -- end issue 18 --
    large = 0 if args.no_replay else 100_000 if args.quick else 1_000_000
    small = 10_000
    started_at = time.perf_counter()
    if args.backend in ("sqlite", "all"):
        run_sqlite(args.appends, small, large)
    if args.backend in ("postgres", "all"):
        run_postgres(args.appends, small, large)
    print(f"\ntotal {time.perf_counter() - started_at:.0f} s")


if __name__ == "__main__":
    main()
