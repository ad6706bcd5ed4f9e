"""Shared rate limiter cost: `python -m benchmarks.ratelimit [--n 3000]`.

One `SqlRateLimiter.check` (the UPSERT … RETURNING token bucket) against the baseline of a
bare `SELECT 1` round trip on the same kind of connection, interleaved in one run on one
PostgreSQL (a throwaway cluster unless TL_BENCH_POSTGRES_URL names a server). A
ratio near 1 means the check costs one round trip. Also prints the in-process limiter.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ledger import postgres_server
from threadline.access.errors import RateLimitedError
from threadline.access.ratelimit import RateLimiter
from threadline.access.ratelimit_sql import open_sql_limiter


def timed(op: Callable[[int], None], n: int) -> list[int]:
    out = []
    for i in range(n):
        t = time.perf_counter_ns()
        op(i)
        out.append(time.perf_counter_ns() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    import psycopg

    with postgres_server() as make_url:
        url = make_url("ratelimit")
        limiter = open_sql_limiter(url, "bench", 1e9, 10**9, secret=b"k" * 32)
        bare = psycopg.connect(url, autocommit=True)
        local = RateLimiter(1e9, 10**9)

        def check(i: int) -> None:
            try:
                limiter.check(f"p{i % 500}")
            except RateLimitedError:
                raise AssertionError("unexpected refusal") from None

        rounds: dict[str, list[int]] = {"select1": [], "sql check": [], "in-process": []}
        for _ in range(10):  # interleaved: load changes hit all three alike
            rounds["select1"] += timed(lambda _i: bare.execute("SELECT 1").fetchone(), args.n // 10)
            rounds["sql check"] += timed(check, args.n // 10)
            rounds["in-process"] += timed(lambda i: local.check(f"p{i % 500}"), args.n // 10)
        base = statistics.median(rounds["select1"])
        print(f"{'operation':<12} {'median µs':>10} {'p99 µs':>8} {'× SELECT 1':>11}")
        for name, lat in rounds.items():
            lat.sort()
            med, p99 = statistics.median(lat), lat[int(len(lat) * 0.99)]
            print(f"{name:<12} {med / 1000:>10.1f} {p99 / 1000:>8.1f} {med / base:>11.2f}")
        limiter.close()
        bare.close()


if __name__ == "__main__":
    main()
