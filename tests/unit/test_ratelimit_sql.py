"""Shared token buckets (issue 18) on SQLite: two limiters on one file — two replicas — draw
on one budget; the bucket refills with time and a refused request takes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from threadline.access.errors import RateLimitedError
from threadline.access.ratelimit_sql import open_sql_limiter

KEY = b"bucket-key-for-tests-0123456789ab"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_two_replicas_share_one_budget(tmp_path: Path) -> None:
    url, clock = f"sqlite:///{tmp_path / 'shared.db'}", Clock()
    a = open_sql_limiter(url, "visitor", 1.0, 5, secret=KEY, clock=clock)
    b = open_sql_limiter(url, "visitor", 1.0, 5, secret=KEY, clock=clock)
    waits: list[float] = []
    for i in range(12):
        try:
            (a if i % 2 else b).check("v1")
        except RateLimitedError as exc:
            waits.append(exc.retry_after_s)
    assert len(waits) == 12 - 5  # one budget, not 2 x 5
    assert waits == [pytest.approx(1.0)] * 7
    b.check("v2")  # another principal has its own bucket
    clock.now += 2.0
    a.check("v1")
    b.check("v1")
    with pytest.raises(RateLimitedError):
        a.check("v1")
    a.close()
    b.close()


def test_a_refused_request_takes_nothing_and_buckets_are_per_limit(tmp_path: Path) -> None:
    url, clock = f"sqlite:///{tmp_path / 'shared.db'}", Clock()
    visitor = open_sql_limiter(url, "visitor", 2.0, 3, secret=KEY, clock=clock)
    login = open_sql_limiter(url, "login", 2.0, 3, secret=KEY, clock=clock)
    with pytest.raises(RateLimitedError):
        visitor.check("p", cost=4)  # more than the burst: refused, bucket still full
    for _ in range(3):
        visitor.check("p")
    login.check("p")  # the login bucket of the same principal is untouched
    clock.now += 10
    assert visitor.prune() == 2
    visitor.close()
    login.close()


def test_the_table_names_principals_by_a_keyed_digest_only(tmp_path: Path) -> None:
    """A bucket row must not give the client address away: neither the address nor an
    unkeyed hash of it (all 2³² IPv4 hashes are quickly tried) is stored, and rows an older
    version wrote in clear are gone once a limiter opens the table."""
    import hashlib
    import sqlite3

    from threadline.access.ratelimit_sql import TABLE, principal_digest

    path = tmp_path / "shared.db"
    url = f"sqlite:///{path}"
    with sqlite3.connect(path) as db:
        db.execute(
            f"CREATE TABLE {TABLE} (bucket TEXT NOT NULL, principal TEXT NOT NULL,"
            " tokens DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,"
            " granted BOOLEAN NOT NULL, PRIMARY KEY (bucket, principal))"
        )
        db.execute(f"INSERT INTO {TABLE} VALUES ('anonymous', '203.0.113.9', 1, 1, 1)")
    a = open_sql_limiter(url, "anonymous", 1.0, 2, secret=KEY)
    b = open_sql_limiter(url, "anonymous", 1.0, 2, secret=KEY)
    a.check("192.0.2.7")
    b.check("192.0.2.7")
    with pytest.raises(RateLimitedError):  # one keyed row, one budget for both replicas
        a.check("192.0.2.7")
    with sqlite3.connect(path) as db:
        rows = [r[0] for r in db.execute(f"SELECT principal FROM {TABLE}")]
    assert rows == [principal_digest("192.0.2.7", KEY)]
    unkeyed = hashlib.sha256(b"192.0.2.7").hexdigest()
    assert not any("192.0.2.7" in r or "203.0.113.9" in r or unkeyed in r for r in rows)
    other = open_sql_limiter(url, "anonymous", 1.0, 2, secret=b"another-key-0123456789abcdef")
    other.check("192.0.2.7")  # another key, another digest: it does not find the bucket
    for limiter in (a, b, other):
        limiter.close()


def test_a_limiter_needs_a_real_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        open_sql_limiter(f"sqlite:///{tmp_path / 's.db'}", "visitor", 1.0, 2, secret=b"")
