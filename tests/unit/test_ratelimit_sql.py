"""Shared token buckets (issue 18) on SQLite: two limiters on one file — two replicas — draw
on one budget; the bucket refills with time and a refused request takes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from threadline.access.errors import RateLimitedError
from threadline.access.ratelimit_sql import open_sql_limiter


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_two_replicas_share_one_budget(tmp_path: Path) -> None:
    url, clock = f"sqlite:///{tmp_path / 'shared.db'}", Clock()
    a = open_sql_limiter(url, "visitor", 1.0, 5, clock=clock)
    b = open_sql_limiter(url, "visitor", 1.0, 5, clock=clock)
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
    visitor = open_sql_limiter(url, "visitor", 2.0, 3, clock=clock)
    login = open_sql_limiter(url, "login", 2.0, 3, clock=clock)
    with pytest.raises(RateLimitedError):
        visitor.check("p", cost=4)  # more than the burst: refused, bucket still full
    for _ in range(3):
        visitor.check("p")
    login.check("p")  # the login bucket of the same principal is untouched
    clock.now += 10
    assert visitor.prune() == 2
    visitor.close()
    login.close()
