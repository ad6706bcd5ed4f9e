"""Shared token buckets on PostgreSQL (issue 18): two limiters — two replicas' connections —
hit concurrently by 8 threads grant exactly the burst, not one burst per replica."""

from __future__ import annotations

import threading

import pytest

from threadline.access.errors import RateLimitedError
from threadline.access.ratelimit_sql import open_sql_limiter

KEY = b"bucket-key-for-tests-0123456789ab"

pytestmark = [pytest.mark.postgres]


def test_concurrent_replicas_grant_exactly_one_budget(fresh_postgres_url: str) -> None:
    # ~0 refill during the test: what is granted is the burst, exactly.
    replicas = [
        open_sql_limiter(fresh_postgres_url, "visitor", 0.001, 45, secret=KEY) for _ in range(2)
    ]
    granted = refused = 0
    lock = threading.Lock()

    def client(n: int) -> None:
        nonlocal granted, refused
        for _ in range(10):
            try:
                replicas[n % 2].check("visitor:one")
                ok = True
            except RateLimitedError:
                ok = False
            with lock:
                granted, refused = granted + ok, refused + (not ok)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in replicas:
        r.close()
    assert (granted, refused) == (45, 35)
