"""Crypto-shredding overhead: `python -m benchmarks.privacy [--backend sqlite|postgres|all]`.

Per backend, in one run, the same operations with personal fields stored in clear
(`IdentityCodec`, the baseline) and encrypted (`ShreddingCodec`), interleaved in slices so
that machine noise hits both alike; the ratios are what to read:

1. append: one MessagePosted per append, expected version, fsync on (key cached).
2. start: a new conversation (ConversationStarted with a visitor reference + one message):
   the encrypted side creates the conversation's data key and its subject link.
3. replay: `read` of a 1,000-event conversation (warm: key cached; cold: new Ledger, the
   key is fetched and unwrapped once).
4. codec only: encode + decode of one MessagePosted in memory (µs), without the database.
5. erase: `erase_subject` of a subject linked to 20 conversations (ms per conversation).

PostgreSQL: a throwaway cluster (harness/postgres.py) unless
TL_BENCH_POSTGRES_URL names a server. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from threadline.ledger.codec import DataCodec, IdentityCodec  # noqa: E402
from threadline.ledger.envelope import NewEvent  # noqa: E402
from threadline.ledger.erasure import erase_subject  # noqa: E402
from threadline.ledger.keyring import MemoryKeyTable  # noqa: E402
from threadline.ledger.masterkey import MasterKey  # noqa: E402
from threadline.ledger.shredding import ShreddingCodec  # noqa: E402
from threadline.ledger.store import Ledger, open_ledger  # noqa: E402

MODES = ("clear", "encrypted")
Op = Callable[[int], object]
TEXT = "I'd like to change the delivery address on my order, it is 4711-22 from last week."


def started() -> NewEvent:
    return NewEvent("ConversationStarted", {"channel": "chat"})


def message(i: int) -> NewEvent:
    return NewEvent(
        "MessagePosted", {"role": "visitor" if i % 2 else "agent", "text": f"{TEXT} #{i}"}
    )


def interleaved_rates(ops: dict[str, Op], n: int, slice_: int = 10) -> dict[str, float]:
    """Operations per second per mode: n calls each, alternating slices of `slice_` calls
    between the modes, so that drift in machine load (shared disks here) hits all alike."""
    for op in ops.values():
        for i in range(10):  # warm-up: connections, caches
            op(-1 - i)
    spent = dict.fromkeys(ops, 0.0)
    for start in range(0, n, slice_):
        for mode, op in ops.items():
            t0 = time.perf_counter()
            for i in range(start, min(n, start + slice_)):
                op(i)
            spent[mode] += time.perf_counter() - t0
    return {mode: n / seconds for mode, seconds in spent.items()}


@contextmanager
def postgres_server() -> Iterator[Callable[[str], str]]:
    """Yields `make_url(database_name)`: TL_BENCH_POSTGRES_URL's server, or a
    throwaway cluster."""
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
        yield lambda name: cluster.create_database(f"bench_{name}_{uuid.uuid4().hex[:8]}")


def open_mode(url: str, mode: str) -> Ledger:
    # open_ledger picks the ShreddingCodec from THREADLINE_MASTER_KEY (set in main).
    return open_ledger(url, codec=IdentityCodec() if mode == "clear" else None)


def bench_appends(url: str, n: int) -> dict[str, float]:
    """Appends/s per mode: one MessagePosted per append, expected version."""
    ledgers = {m: open_mode(url, m) for m in MODES}
    try:
        ops: dict[str, Op] = {}
        for mode, ledger in ledgers.items():
            cid = f"{mode}-{uuid.uuid4().hex}"
            versions = [ledger.append(cid, started()).position]

            def op(
                i: int, ledger: Ledger = ledger, cid: str = cid, v: list[int] = versions
            ) -> None:
                v[0] = ledger.append(cid, message(i), expected_version=v[0]).position

            ops[mode] = op
        return interleaved_rates(ops, n)
    finally:
        for ledger in ledgers.values():
            ledger.close()


def bench_starts(url: str, n: int) -> dict[str, float]:
    """New conversations/s per mode (start with a visitor reference + first message)."""
    ledgers = {m: open_mode(url, m) for m in MODES}
    try:
        ops: dict[str, Op] = {}
        for mode, ledger in ledgers.items():

            def op(i: int, ledger: Ledger = ledger) -> None:
                ledger.append_batch(
                    f"s-{uuid.uuid4().hex}",
                    [
                        NewEvent(
                            "ConversationStarted",
                            {"channel": "sms", "visitor_ref": f"tel:+1555{i:07d}"},
                        ),
                        message(i),
                    ],
                )

            ops[mode] = op
        return interleaved_rates(ops, n)
    finally:
        for ledger in ledgers.values():
            ledger.close()


def bench_replay(url: str, repeats: int) -> dict[str, float]:
    """Median ms to read a 1,000-event conversation, reads of the two modes alternating
    (warm: key cached), and cold (encrypted, a new Ledger: the key is fetched once)."""
    ledgers = {m: open_mode(url, m) for m in MODES}
    cids = {}
    try:
        for mode, ledger in ledgers.items():
            cid = cids[mode] = f"r-{mode}-{uuid.uuid4().hex}"
            ledger.append(cid, started())
            for k in range(0, 999, 333):
                ledger.append_batch(cid, [message(k + i) for i in range(333)])
        samples: dict[str, list[float]] = {m: [] for m in MODES}
        for _ in range(repeats):
            for mode, ledger in ledgers.items():
                t0 = time.perf_counter()
                events = ledger.read(cids[mode])
                samples[mode].append((time.perf_counter() - t0) * 1000)
                assert len(events) == 1000
    finally:
        for ledger in ledgers.values():
            ledger.close()
    out = {f"{m} warm": statistics.median(v) for m, v in samples.items()}
    cold = []
    for _ in range(max(3, repeats // 3)):
        with open_mode(url, "encrypted") as fresh:
            fresh.read(cids["clear"], limit=1)  # connections warm, data key not cached
            t0 = time.perf_counter()
            fresh.read(cids["encrypted"])
            cold.append((time.perf_counter() - t0) * 1000)
    out["encrypted cold"] = statistics.median(cold)
    return out


def bench_codec(n: int) -> dict[str, float]:
    """Median µs per encode + decode, in memory."""
    codecs: dict[str, DataCodec] = {
        "clear": IdentityCodec(),
        "encrypted": ShreddingCodec(MemoryKeyTable(), MasterKey(secrets.token_bytes(32), "b")),
    }
    data = {"role": "visitor", "text": TEXT}
    out = {}
    for mode, codec in codecs.items():
        codec.decode("c", "MessagePosted", codec.encode("c", "MessagePosted", data))
        t0 = time.perf_counter()
        for _ in range(n):
            codec.decode("c", "MessagePosted", codec.encode("c", "MessagePosted", data))
        out[mode] = (time.perf_counter() - t0) / n * 1e6
    return out


def bench_erase(url: str, conversations: int) -> float:
    """ms per shredded conversation."""
    with open_mode(url, "encrypted") as ledger:
        phone = f"+1555{secrets.randbelow(10**7):07d}"
        for i in range(conversations):
            ledger.append_batch(
                f"e-{i}-{uuid.uuid4().hex}",
                [
                    NewEvent(
                        "ConversationStarted", {"channel": "sms", "visitor_ref": f"tel:{phone}"}
                    ),
                    *[message(k) for k in range(50)],
                ],
            )
        t0 = time.perf_counter()
        report = erase_subject(ledger, phone)
        elapsed = time.perf_counter() - t0
        assert len(report.erased) == conversations
        return elapsed * 1000 / conversations


def report(backend: str, url_for: Callable[[str], str], n: int) -> None:
    print(f"\n[{backend}]", flush=True)
    appends = bench_appends(url_for("appends"), n)
    ratio = appends["clear"] / appends["encrypted"]
    print(
        f"  append (1 event/txn):   clear {appends['clear']:7.0f}/s   encrypted "
        f"{appends['encrypted']:7.0f}/s   time ratio {ratio:.3f}x",
        flush=True,
    )
    starts = bench_starts(url_for("starts"), n // 2)
    ratio = starts["clear"] / starts["encrypted"]
    print(
        f"  new conversation:       clear {starts['clear']:7.0f}/s   encrypted "
        f"{starts['encrypted']:7.0f}/s   time ratio {ratio:.3f}x",
        flush=True,
    )
    replay = bench_replay(url_for("replay"), 31)
    print(
        f"  replay 1,000 events:    clear {replay['clear warm']:6.2f} ms   encrypted "
        f"{replay['encrypted warm']:6.2f} ms (cold {replay['encrypted cold']:6.2f} ms)   "
        f"ratio {replay['encrypted warm'] / replay['clear warm']:.2f}x",
        flush=True,
    )
    per_conversation = bench_erase(url_for("erase"), 20)
    print(f"  erase: {per_conversation:.1f} ms per conversation (20 conversations of 51 events)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--appends", type=int, default=1000, help="appends per mode")
    args = parser.parse_args()
    os.environ["THREADLINE_MASTER_KEY"] = secrets.token_urlsafe(32)
    os.environ["THREADLINE_PRIVACY"] = "on"
    started_at = time.perf_counter()
    codec = bench_codec(20_000)
    print(
        f"codec only (MessagePosted encode + decode): clear {codec['clear']:.2f} µs, "
        f"encrypted {codec['encrypted']:.2f} µs (+{codec['encrypted'] - codec['clear']:.2f} µs)"
    )
    if args.backend in ("sqlite", "all"):
        with tempfile.TemporaryDirectory(prefix="threadline-bench-") as tmp:
            report("sqlite", lambda name: f"sqlite:///{Path(tmp) / name}.db", args.appends)
    if args.backend in ("postgres", "all"):
        with postgres_server() as make_url:
            report("postgres", make_url, args.appends)
    print(f"\ntotal {time.perf_counter() - started_at:.0f} s")


if __name__ == "__main__":
    main()
