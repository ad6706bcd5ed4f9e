"""A throwaway PostgreSQL 15 cluster for tests: real server, loopback only, removed at exit.

Fixtures:
- `postgres_cluster` (session): the running `PostgresCluster`.
- `postgres_url` (session): URL of one database created at startup.
- `fresh_postgres_url` (function): URL of a new, empty database per test (dropped afterwards).

The binaries come from Debian (`scripts/sysdeps.sh` installs them). If they are missing the
fixtures fail loudly: a skipped database test would hide exactly the bugs they exist for.

`PostgresCluster` is usable outside pytest too (benchmarks): `with PostgresCluster() as pg:`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from harness.postgres import PostgresCluster


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    try:
        cluster.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    return postgres_cluster.create_database("threadline")


@pytest.fixture
def fresh_postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = postgres_cluster.create_database(name)
    try:
        yield url
    finally:
        postgres_cluster.drop_database(name)
