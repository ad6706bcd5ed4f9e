"""Partitioned-log append throughput (issue 18), run by
`python -m benchmarks.ledger --partitions 1,2,4 [--writers 16] [--seconds 8]`.

One throwaway PostgreSQL (harness/postgres.py, or TL_BENCH_POSTGRES_URL), a fresh database
per partition count. 16 writers (4 processes × 4 threads, so that client-side Python is not
one GIL) each append to its own conversation, one event per transaction (group commit off,
so that every append takes its partition's lock once), for a fixed time after a common
start. The writers' conversations are chosen so that each partition gets the same number
of writers (a hash spreads many conversations evenly; 16 random ids would not be even).
Prints appends/s per partition count and the ratio to 1 partition, measured in the same run.

Levels (`--levels`, default `append,insert`):
- `append`: the whole `Ledger.append` (validation, hash chain, codec: client CPU, which on a
  2-core machine shared with other work is the limit long before the lock), 4 processes ×
  4 threads;
- `insert`: the recorder's insert call alone with ready stored events, 16 threads in one
  process (what the lock decides, but one GIL for all writers);
- `insert-procs`: the same insert from 4 processes × 4 threads (no shared GIL).

`--waits` samples PostgreSQL's own view of the writers during each timed window
(`benchmarks/pg_waits.py`: pg_stat_activity wait events, and the machine's busy cores), so
a figure comes with where its time went: waiting for the partition lock, the WAL flush, the
CPU, or the client. `--pg-setting name=value` (repeatable) measures each setting in the
same alternating rounds as the default, with ratios taken within one setting.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from eventsourcing.persistence import StoredEvent

from benchmarks.pg_waits import WaitSampler
from benchmarks.report import Figure, emit
from threadline.ledger.envelope import NewEvent
from threadline.ledger.partitions import partition_of
from threadline.ledger.settings import LedgerSettings
from threadline.ledger.store import open_ledger

TEXT = "I'd like to change the delivery address on my order, it is 4711-22 from last week."


def conversations(writers: int, partitions: int) -> list[str]:
    """`writers` ids, writer w's in partition w mod `partitions`."""
    out: list[str] = []
    while len(out) < writers:
        cid = f"bench-{uuid.uuid4().hex}"
        if partition_of(cid, partitions) == len(out) % partitions:
            out.append(cid)
    return out


def _process(
    url: str, partitions: int, cids: list[str], start: Any, ready: Any, seconds: float, out: Any
) -> None:
    settings = LedgerSettings(
        database_url=url, log_partitions=partitions, postgres_pool_size=len(cids) + 1
    )
    with open_ledger(settings=settings, group_commit=False) as ledger:
        for cid in cids:
            ledger.append(cid, NewEvent("ConversationStarted", {"channel": "chat"}))
        counts = [0] * len(cids)

        def work(k: int) -> None:
            cid, version = cids[k], 1
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                event = NewEvent("MessagePosted", {"role": "visitor", "text": TEXT}, actor="b")
                version = ledger.append(cid, event, expected_version=version).position
                counts[k] += 1

        ready.put(os.getpid())
        start.wait()
        threads = [threading.Thread(target=work, args=(k,)) for k in range(len(cids))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out.put(sum(counts))


def _insert_loop(recorder: Any, cid: str, seconds: float, counts: list[int], k: int) -> None:
    from threadline.ledger.recorders import EventIdRecord

    state = b'{"data":{"role":"visitor","text":"' + TEXT.encode() + b'"}' + b"x" * 420 + b"}"
    position, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        position += 1
        record = EventIdRecord(str(uuid.uuid4()), cid, position, "bench")
        event = StoredEvent(cid, position, "MessagePosted", state)
        recorder.insert_events([event], event_ids=[record])
        counts[k] += 1


def _recorder_process(
    url: str, partitions: int, cids: list[str], start: Any, ready: Any, seconds: float, out: Any
) -> None:
    """The recorder's insert alone (one event and its id per call), one thread per writer."""
    from threadline.ledger.partitions_postgres import open_recorder
    from threadline.ledger.postgres import datastore_from_url

    datastore = datastore_from_url(url, LedgerSettings(postgres_pool_size=len(cids) + 1))
    try:
        datastore.pool.open(wait=True, timeout=60)
        recorder = open_recorder(datastore, partitions)
        counts = [0] * len(cids)
        ready.put(os.getpid())
        start.wait()
        threads = [
            threading.Thread(target=_insert_loop, args=(recorder, cid, seconds, counts, k))
            for k, cid in enumerate(cids)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out.put(sum(counts))
    finally:
        datastore.close()


def rate(
    target: Callable[..., None],
    url: str,
    partitions: int,
    writers: int,
    processes: int,
    seconds: float,
    waits: list[WaitSampler] | None = None,
) -> float:
    """Appends/s of `writers` writers spread over `processes` spawned processes, each
    running `target` (`_process`: Ledger.append; `_recorder_process`: the insert alone).
    With `waits`, PostgreSQL's wait events are sampled over the timed window."""
    ctx = mp.get_context("spawn")
    start, ready, out = ctx.Event(), ctx.Queue(), ctx.Queue()
    cids = conversations(writers, partitions)
    per = writers // processes
    procs = [
        ctx.Process(
            target=target,
            args=(url, partitions, cids[i * per : (i + 1) * per], start, ready, seconds, out),
        )
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    if waits is not None:
        # The schema exists by now; the first appends create nothing more.
        sampler = WaitSampler(url)
        start.set()
        with sampler:
            time.sleep(seconds * 0.95)  # inside the writers' window only
        waits.append(sampler)
    else:
        start.set()
    total: int = sum(out.get(timeout=seconds + 120) for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


LEVELS = {
    # --levels key: (printed name, process target, processes or None for `processes`)
    "append": ("Ledger.append", _process, None),
    "insert": ("recorder insert", _recorder_process, 1),
    "insert-procs": ("recorder insert", _recorder_process, 4),
}


def _configure(url: str, setting: str) -> str:
    """`name=value` set on the fresh database (ALTER DATABASE: new sessions get it)."""
    if setting:
        import psycopg
        from psycopg import sql

        name, value = setting.split("=", 1)
        db = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                    sql.Identifier(str(db)), sql.Identifier(name), sql.Literal(value)
                )
            )
    return url


def run(
    make_url: Any,
    counts: list[int],
    writers: int = 16,
    processes: int = 4,
    seconds: float = 8.0,
    rounds: int = 3,
    levels: list[str] | None = None,
    settings: list[str] | None = None,
    waits: bool = False,
) -> None:
    """`settings`: server settings to compare, "" being the default (each measured in the
    same alternating rounds, ratios taken within one setting)."""
    configs = settings or [""]
    for key in levels or ["append", "insert"]:
        level, target, procs = LEVELS[key]
        print(
            f"\n[postgres] partitioned log, {level}, {writers} writers "
            f"({procs or processes} process(es)), one event per transaction, {seconds:g} s "
            f"each; load {os.getloadavg()[0]:.1f}"
        )
        # Rounds alternate settings and partition counts so that drift in machine load
        # (shared machine) hits every configuration alike; each figure is its mean.
        samples: dict[tuple[str, int], list[float]] = {(c, n): [] for c in configs for n in counts}
        sampled: dict[tuple[str, int], list[WaitSampler]] = {k: [] for k in samples}
        for r in range(rounds):
            for config in configs:
                for n in counts:
                    name = f"{key.replace('-', '_')}_{n}_{r}"
                    url = _configure(make_url(name + f"_{configs.index(config)}"), config)
                    samples[config, n].append(
                        rate(
                            target,
                            url,
                            n,
                            writers,
                            procs or processes,
                            seconds,
                            sampled[config, n] if waits else None,
                        )
                    )
        for config in configs:
            label = config or "default settings"
            rates = {n: sum(samples[config, n]) / rounds for n in counts}
            print(f"  {label}:")
            for n in counts:
                base = rates.get(1)
                ratio = f"   {rates[n] / base:5.2f}x 1 partition" if base else ""
                each = " ".join(f"{x:.0f}" for x in samples[config, n])
                print(f"    {n} partition(s) {rates[n]:8.0f} appends/s{ratio}   (rounds: {each})")
                if waits and sampled[config, n]:
                    print(f"      {merged(sampled[config, n])}")
            for n in counts:
                if n > 1 and 1 in rates:
                    emit(
                        Figure(
                            f"{level}, {writers} writers in {procs or processes} process(es), "
                            f"{n} partitions, postgres" + (f", {config}" if config else ""),
                            rates[n],
                            "appends/s",
                            baseline=rates[1],
                            baseline_name="1 partition",
                            goal_min=2.5 * rates[1] if n == 4 else None,
                        )
                    )
        print(f"  load average after: {os.getloadavg()[0]:.1f}")


def merged(samplers: list[WaitSampler]) -> str:
    """One wait profile over several rounds' samplers."""
    total = WaitSampler("")
    for s in samplers:
        total.counts.update(s.counts)
    total.busy_share = sum(s.busy_share for s in samplers) / len(samplers)
    return total.summary()
