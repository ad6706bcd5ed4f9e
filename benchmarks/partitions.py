"""Partitioned-log append throughput (issue 18), run by
`python -m benchmarks.ledger --partitions 1,2,4 [--writers 16] [--seconds 8]`.

One throwaway PostgreSQL (harness/postgres.py, or TL_BENCH_POSTGRES_URL), a fresh database
per partition count. 16 writers (4 processes × 4 threads, so that client-side Python is not
one GIL) each append to its own conversation, one event per transaction (group commit off,
so that every append takes its partition's lock once), for a fixed time after a common
start. The writers' conversations are chosen so that each partition gets the same number
of writers (a hash spreads many conversations evenly; 16 random ids would not be even).
Prints appends/s per partition count and the ratio to 1 partition, measured in the same run.

Two levels: the whole `Ledger.append` (validation, hash chain, codec: client CPU, which on a
2-core machine shared with other work is the limit long before the lock), and the
recorder's insert call alone with ready stored events from 16 threads (what the lock
decides: database throughput per partition count).
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


def recorder_rate(url: str, partitions: int, writers: int, seconds: float) -> float:
    """The recorder's insert alone (one event and its id per call) from `writers` threads."""
    from threadline.ledger.partitions_postgres import open_recorder
    from threadline.ledger.postgres import datastore_from_url
    from threadline.ledger.recorders import EventIdRecord

    state = b'{"data":{"role":"visitor","text":"' + TEXT.encode() + b'"}' + b"x" * 420 + b"}"
    datastore = datastore_from_url(url, LedgerSettings(postgres_pool_size=writers + 1))
    try:
        datastore.pool.open(wait=True, timeout=60)
        recorder = open_recorder(datastore, partitions)
        cids = conversations(writers, partitions)
        counts = [0] * writers
        barrier = threading.Barrier(writers)

        def work(k: int) -> None:
            barrier.wait()
            position, deadline = 0, time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                position += 1
                record = EventIdRecord(str(uuid.uuid4()), cids[k], position, "bench")
                event = StoredEvent(cids[k], position, "MessagePosted", state)
                recorder.insert_events([event], event_ids=[record])
                counts[k] += 1

        threads = [threading.Thread(target=work, args=(k,)) for k in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sum(counts) / seconds
    finally:
        datastore.close()


def rate(url: str, partitions: int, writers: int, processes: int, seconds: float) -> float:
    ctx = mp.get_context("spawn")
    start, ready, out = ctx.Event(), ctx.Queue(), ctx.Queue()
    cids = conversations(writers, partitions)
    per = writers // processes
    procs = [
        ctx.Process(
            target=_process,
            args=(url, partitions, cids[i * per : (i + 1) * per], start, ready, seconds, out),
        )
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    start.set()
    total: int = sum(out.get(timeout=seconds + 120) for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


def run(
    make_url: Any,
    counts: list[int],
    writers: int = 16,
    processes: int = 4,
    seconds: float = 8.0,
    rounds: int = 3,
) -> None:
    levels: dict[str, Callable[[int, int], float]] = {
        "Ledger.append": lambda n, r: rate(
            make_url(f"ledger_{n}_{r}"), n, writers, processes, seconds
        ),
        "recorder insert": lambda n, r: recorder_rate(
            make_url(f"recorder_{n}_{r}"), n, writers, seconds
        ),
    }
    for level, measure in levels.items():
        print(
            f"\n[postgres] partitioned log, {level}, {writers} writers, one event per "
            f"transaction, {seconds:g} s each; load {os.getloadavg()[0]:.1f}"
        )
        # Rounds alternate the partition counts so that drift in machine load (shared
        # machine) hits every count alike; each count's figure is its mean over the rounds.
        samples: dict[int, list[float]] = {n: [] for n in counts}
        for r in range(rounds):
            for n in counts:
                samples[n].append(measure(n, r))
        rates = {n: sum(v) / len(v) for n, v in samples.items()}
        for n in counts:
            base = rates.get(1)
            ratio = f"   {rates[n] / base:5.2f}x 1 partition" if base else ""
            each = " ".join(f"{x:.0f}" for x in samples[n])
            print(f"  {n} partition(s) {rates[n]:10.0f} appends/s{ratio}   (rounds: {each})")
        print(f"  load average after: {os.getloadavg()[0]:.1f}")
        for n in counts:
            if n > 1 and 1 in rates:
                emit(
                    Figure(
                        f"{level}, {writers} writers, {n} partitions, postgres",
                        rates[n],
                        "appends/s",
                        baseline=rates[1],
                        baseline_name="1 partition",
                        goal_min=2.5 * rates[1] if n == 4 else None,
                    )
                )
