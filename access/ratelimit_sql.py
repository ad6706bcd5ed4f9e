"""Token buckets in the database: one budget per principal across every replica.

Each `check` is ONE statement (one round trip): an UPSERT that refills the principal's bucket
by the time elapsed, takes `cost` tokens if there are enough, and RETURNs whether it did and
what is left. The row lock the UPSERT takes makes concurrent checks from any number of
replicas serialise per principal, so the budget is exact, not N × the limit.

Time comes from the caller's wall clock (`time.time`): replicas are NTP-synchronised, and a
clock that runs behind a bucket's last update refills nothing (`max(0, now - updated_at)`)
instead of draining it. Buckets of principals idle for longer than a full refill are
equivalent to a missing row; `prune` deletes them.

The table holds no principal in clear: `principal` is `hmac:` + HMAC-SHA256 of the
principal (a client address, an SMS sender, a key id) keyed by `secret`, which the served
app derives from THREADLINE_SECRET (purpose `threadline/rate-buckets`). An unkeyed hash of
an IPv4 address is reversed by hashing all 2³² of them; a keyed one is not. Every replica
derives the same key (they share THREADLINE_SECRET for tokens anyway), so a principal has
one row and one budget across replicas. Rows left in clear by an older version are deleted
when a limiter opens the table (those clients start with a full bucket once).

SQLite (one node) and PostgreSQL share the statement but for the names of min/max.
Vendor imports (psycopg) happen lazily in `open_sql_limiter`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from threadline.access.errors import RateLimitedError
from threadline.ledger.aead import blind

TABLE = "threadline_rate_buckets"
PURPOSE = "threadline/rate-buckets"  # HKDF purpose of the bucket key (app/bootstrap.py)
DIGEST_PREFIX = "hmac:"
MIN_KEY_BYTES = 16

_DDL = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    bucket TEXT NOT NULL,
    principal TEXT NOT NULL,
    tokens DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    granted BOOLEAN NOT NULL,
    PRIMARY KEY (bucket, principal)
)"""


def _upsert(lo: str, hi: str, mark: Callable[[str], str]) -> str:
    refill = (
        f"{lo}({mark('burst')}, b.tokens + {hi}(0, {mark('now')} - b.updated_at) * {mark('rate')})"
    )
    return f"""INSERT INTO {TABLE} AS b (bucket, principal, tokens, updated_at, granted)
VALUES ({mark("bucket")}, {mark("principal")},
        CASE WHEN {mark("burst")} >= {mark("cost")} THEN {mark("burst")} - {mark("cost")}
             ELSE {mark("burst")} END,
        {mark("now")}, {mark("burst")} >= {mark("cost")})
ON CONFLICT (bucket, principal) DO UPDATE SET
    tokens = CASE WHEN {refill} >= {mark("cost")} THEN {refill} - {mark("cost")} ELSE {refill} END,
    granted = {refill} >= {mark("cost")},
    updated_at = {hi}(b.updated_at, {mark("now")})
RETURNING granted, tokens"""  # noqa: S608 - constant names, values bound


# Rows written before principals were keyed hold them in clear.
_DROP_CLEAR = f"DELETE FROM {TABLE} WHERE principal NOT LIKE '{DIGEST_PREFIX}%'"  # noqa: S608


def principal_digest(principal: str, secret: bytes) -> str:
    """What the table stores for `principal`: the same on every replica with the same key."""
    return DIGEST_PREFIX + blind(secret, principal)


class _Conn(Protocol):
    def execute(self, sql: str, params: Any = ...) -> Any: ...

    def close(self) -> None: ...


class SqlRateLimiter:
    """Same contract as `threadline.access.ratelimit.RateLimiter.check`; `bucket` names the
    limit (visitor, key, login…) so several limiters share the table."""

    def __init__(
        self,
        conn: _Conn,
        bucket: str,
        rate_per_s: float,
        burst: int,
        *,
        postgres: bool,
        secret: bytes,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst ≥ 1")
        if len(secret) < MIN_KEY_BYTES:
            raise ValueError(f"the bucket key must have at least {MIN_KEY_BYTES} bytes")
        self._secret = secret
        self._conn = conn
        self.bucket = bucket
        self._rate = float(rate_per_s)
        self._burst = float(burst)
        self._clock = clock
        self._postgres = postgres
        if postgres:
            self._sql = _upsert("LEAST", "GREATEST", lambda n: f"%({n})s")
        else:
            self._sql = _upsert("min", "max", lambda n: f":{n}")
        # One connection, one statement at a time (sqlite3 and psycopg connections are not
        # for concurrent use); the statement is short, so the lock is held ~one round trip.
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute(_DDL)
            self._conn.execute(_DROP_CLEAR)
            self._commit()

    def check(self, principal: str, cost: float = 1.0) -> None:
        """Takes `cost` tokens or raises RateLimitedError (taking nothing)."""
        params = {
            "bucket": self.bucket,
            "principal": principal_digest(principal, self._secret),
            "burst": self._burst,
            "cost": float(cost),
            "rate": self._rate,
            "now": self._clock(),
        }
        with self._lock:
            granted, tokens = self._conn.execute(self._sql, params).fetchone()
            self._commit()
        if not granted:
            raise RateLimitedError((cost - tokens) / self._rate)

    def prune(self) -> int:
        """Deletes buckets that are full again (idle longer than burst / rate)."""
        idle = self._burst / self._rate
        mark = "%(before)s" if self._postgres else ":before"
        with self._lock:
            cur = self._conn.execute(
                f"DELETE FROM {TABLE} WHERE updated_at < {mark}",  # noqa: S608 - constant names
                {"before": self._clock() - idle},
            )
            self._commit()
        return int(cur.rowcount or 0)

    def _commit(self) -> None:
        if not self._postgres:
            commit = getattr(self._conn, "commit", None)
            if commit is not None:
                commit()

    def close(self) -> None:
        self._conn.close()


def open_sql_limiter(
    url: str,
    bucket: str,
    rate_per_s: float,
    burst: int,
    *,
    secret: bytes,
    clock: Callable[[], float] = time.time,
) -> SqlRateLimiter:
    """A limiter on the ledger's database (`postgresql://…` or `sqlite:///path`); `secret`
    keys the stored principals (the same on every replica: one budget)."""
    if len(secret) < MIN_KEY_BYTES:
        raise ValueError(f"the bucket key must have at least {MIN_KEY_BYTES} bytes")
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("postgresql", "postgres"):
        import psycopg

        conn: Any = psycopg.connect(url, autocommit=True)
        # A bucket is not worth a WAL flush per request: a crash loses at most the last few
        # ms of spending (clients get those tokens again), never another row's data.
        conn.execute("SET synchronous_commit = off")
        return SqlRateLimiter(
            conn, bucket, rate_per_s, burst, postgres=True, secret=secret, clock=clock
        )
    if scheme == "sqlite":
        import sqlite3

        from threadline.ledger.backends import sqlite_path

        conn = sqlite3.connect(sqlite_path(url), check_same_thread=False, timeout=10)
        return SqlRateLimiter(
            conn, bucket, rate_per_s, burst, postgres=False, secret=secret, clock=clock
        )
    raise ValueError("the shared rate limiter needs a postgresql:// or sqlite:/// URL")
