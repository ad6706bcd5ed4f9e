"""The shared token buckets on a real PostgreSQL behind two served replicas (issue 18/19):
rate-limited anonymous requests and failed authentications spend one budget across the
replicas, and the bucket table holds no client address — neither the address in clear nor
an unkeyed hash of it — only HMACs keyed by a subkey of THREADLINE_SECRET."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from harness.api_server import TEST_SECRET, ApiServer
from harness.postgres import PostgresCluster
from threadline.access.ratelimit_sql import PURPOSE, TABLE, principal_digest
from threadline.ledger.aead import derive

pytestmark = pytest.mark.postgres

ADDRESS = "127.0.0.1"  # what the servers see of this test's client
LIMITS = {
    "THREADLINE_ANONYMOUS_BURST": "3",
    "THREADLINE_ANONYMOUS_RATE_PER_S": "0.01",
    "THREADLINE_FAILED_AUTH_BURST": "2",
    "THREADLINE_FAILED_AUTH_RATE_PER_S": "0.01",
}


def test_rate_limited_requests_leave_no_client_address_in_the_bucket_table(
    postgres_cluster: PostgresCluster, tmp_path: Path
) -> None:
    url = postgres_cluster.create_database(f"buckets_{uuid.uuid4().hex[:12]}")
    a = ApiServer(url, tmp_path / "a.log", **LIMITS)
    b = ApiServer(url, tmp_path / "b.log", **LIMITS)
    with a, b:
        started = []
        for i in range(5):
            with (b if i % 2 else a).client() as c:
                started.append(c.post("/v1/conversations", json={"channel": "chat"}).status_code)
        # One budget of 3 across both replicas (per-replica buckets would grant 3 + 2).
        assert started == [201] * 3 + [429] * 2, started
        refused = []
        for i in range(3):
            with httpx.Client(base_url=(b if i % 2 else a).base_url, timeout=10) as c:
                r = c.get("/v1/conversations/c1/events", headers={"Authorization": "Bearer nope"})
                refused.append(r.status_code)
        assert refused == [401, 401, 429], refused
    with psycopg.connect(url) as db:
        rows = db.execute(f"SELECT bucket, principal FROM {TABLE}").fetchall()
    buckets = {bucket for bucket, _ in rows}
    assert {"anonymous", "failed_auth"} <= buckets
    key = derive(TEST_SECRET.encode("utf-8"), PURPOSE)
    expected = principal_digest(ADDRESS, key)
    assert {p for bucket, p in rows if bucket in ("anonymous", "failed_auth")} == {expected}
    unkeyed = {
        hashlib.sha256(ADDRESS.encode()).hexdigest(),
        hashlib.md5(ADDRESS.encode()).hexdigest(),  # noqa: S324 - what must not be there
    }
    for _, principal in rows:
        assert principal.startswith("hmac:")
        assert ADDRESS not in principal
        assert not any(h in principal for h in unkeyed)
