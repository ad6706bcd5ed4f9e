"""Signed checkpoint write time: `python -m benchmarks.checkpoint [--conversations N]`.

An SQLite ledger of N conversations (4 events each) and a checkpoint log of H checkpoints
(`--history`, default 24: two hours at the server's 300 s interval; re-signed copies of the
first, chained); then 1% of the conversations (and as many new ones) grow by one event, and
the next checkpoint is written, in the same run, as before (`write_checkpoint(full=True)`:
the whole log read and verified, every event re-hashed and its id looked up) and
incrementally (the default: the newest checkpoint read from the end of the log, the new
entries, and one head row of each other checkpointed conversation) — the latter twice: head
rows read in batches (`HeadsReader.select_heads`, the default) and, as before it, one indexed
read per conversation. Each timing starts from the same checkpoint log (restored before each
run); modes alternate. The figure is this
process's CPU time; `--backend postgres` (a throwaway cluster, harness/postgres.py) reports
wall time, the server's work not being this process's CPU. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import Figure, emit  # noqa: E402
from threadline.ledger import audit, checkpoint  # noqa: E402
from threadline.ledger.codec import IdentityCodec  # noqa: E402
from threadline.ledger.envelope import NewEvent  # noqa: E402
from threadline.ledger.store import Ledger, open_ledger  # noqa: E402

EVENTS = 4


def events(n: int) -> list[NewEvent]:
    first = NewEvent("ConversationStarted", {"channel": "chat"})
    said = [NewEvent("MessagePosted", {"role": "visitor", "text": f"words {i}"}) for i in range(n)]
    return [first, *said]


def fill(ledger: Ledger, conversations: int) -> None:
    for n in range(conversations):
        ledger.append_batch(f"c{n:06}", events(EVENTS - 1))


def history(paths: checkpoint.CheckpointPaths, count: int) -> bytes:
    """The log with `count` checkpoints: the first one signed over again, each chained."""
    key = checkpoint.read_key(paths.key_file)
    (first,) = checkpoint.read_log(paths.log_file)
    chain = [first]
    for number in range(2, count + 1):
        unsigned = replace(first, number=number, prev=chain[-1].digest(), signature="")
        chain.append(checkpoint.sign(unsigned, key))
    return b"".join(cp.line() + b"\n" for cp in chain)


MODES = {
    "as before": True,  # full=True
    "incremental": False,
    "incremental, heads one by one": False,
}


def timed(
    ledger: Ledger, paths: checkpoint.CheckpointPaths, base: bytes, count: int, mode: str
) -> float:
    """CPU seconds of this process: on a shared machine wall time mostly measures the
    neighbours (it is printed too)."""
    paths.log_file.write_bytes(base)
    full = MODES[mode]
    one_by_one = (
        mock.patch.object(audit, "_stored_heads", audit._heads_one_by_one)
        if mode.endswith("one by one")
        else nullcontext()
    )
    started, cpu = time.perf_counter(), time.process_time()
    with one_by_one:
        signed, report = checkpoint.write_checkpoint(ledger, paths, full=full)
    seconds, wall = time.process_time() - cpu, time.perf_counter() - started
    print(f"  {mode}: {wall:.3f} s wall, {seconds:.3f} s CPU")
    assert signed.number == count + 1
    assert not report.broken
    return wall if WALL else seconds


WALL = False  # PostgreSQL: its server's work is not this process's CPU, so wall time


@contextmanager
def database(backend: str, tmp: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    from harness.postgres import PostgresCluster

    with PostgresCluster() as cluster:
        yield cluster.create_database("bench_checkpoint")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    n = args.conversations
    global WALL
    WALL = args.backend == "postgres"
    with tempfile.TemporaryDirectory() as tmp, database(args.backend, tmp) as url:
        paths = checkpoint.CheckpointPaths(Path(tmp) / "cp.key", Path(tmp) / "cp.jsonl")
        with open_ledger(url, codec=IdentityCodec(), group_commit=False) as ledger:
            started = time.perf_counter()
            fill(ledger, n)
            filled = time.perf_counter() - started
            first_started = time.perf_counter()
            checkpoint.write_checkpoint(ledger, paths)
            first = time.perf_counter() - first_started
            base = history(paths, args.history)
            touched = max(1, n // 100)
            for i in range(touched):
                ledger.append(f"c{i * 100:06}", events(1)[1])
                ledger.append_batch(f"new{i:06}", events(1))
            times: dict[str, list[float]] = {mode: [] for mode in MODES}
            for _ in range(args.repeat):
                for mode in MODES:
                    times[mode].append(timed(ledger, paths, base, args.history, mode))
    median = {mode: statistics.median(runs) for mode, runs in times.items()}
    whole, incremental = median["as before"], median["incremental"]
    one_by_one = median["incremental, heads one by one"]
    load = os.getloadavg()[0]
    unit = "s wall" if WALL else "s CPU"
    print(f"{n:,} conversations × {EVENTS} events filled in {filled:.1f} s")
    print(f"first checkpoint: {first:.2f} s; {args.history} in the log, then the next:")
    print(f"  {touched} conversations grown by one event, {touched} new")
    for mode, runs in times.items():
        listed = ", ".join(f"{t:.3f}" for t in runs)
        print(f"  {mode:29}: {median[mode]:.3f} {unit}  (runs {listed})")
    print(
        f"  ratio {incremental / whole:.3f} to as before, {incremental / one_by_one:.3f} to "
        f"heads one by one; load average {load:.1f}"
    )
    emit(
        Figure(
            name=f"checkpoint write ({args.backend}), {n:,} conversations, 1% grown, "
            f"{args.history} in log",
            value=incremental,
            unit=unit,
            baseline=whole,
            baseline_name="as before: whole log verified, whole ledger surveyed",
        )
    )
    emit(
        Figure(
            name=f"incremental checkpoint write ({args.backend}), {n:,} conversations, "
            "untouched heads in batches",
            value=incremental,
            unit=unit,
            baseline=one_by_one,
            baseline_name="untouched heads one indexed read each",
        )
    )


if __name__ == "__main__":
    main()
