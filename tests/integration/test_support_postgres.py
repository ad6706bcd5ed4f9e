"""Smoke tests for the throwaway PostgreSQL cluster fixtures."""

from __future__ import annotations

import psycopg
import pytest

pytestmark = pytest.mark.postgres


def test_postgres_url_is_a_real_postgresql_15_over_tcp(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql://threadline:")
    assert "@127.0.0.1:" in postgres_url
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
        assert row is not None
        assert 150000 <= int(row[0]) < 160000
        row = conn.execute("SELECT inet_server_addr()::text").fetchone()
        assert row is not None
        assert row[0].startswith("127.0.0.1")


def test_wrong_password_is_refused(postgres_url: str) -> None:
    prefix, _, rest = postgres_url.partition("@")
    bad = prefix.rsplit(":", 1)[0] + ":wrong@" + rest
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(bad).close()


@pytest.mark.parametrize("round_", [1, 2])
def test_fresh_database_starts_empty(fresh_postgres_url: str, round_: int) -> None:
    # Both rounds create the same table: this only passes if each test gets its own database.
    with psycopg.connect(fresh_postgres_url) as conn:
        conn.execute("CREATE TABLE probe (n int)")
        conn.execute("INSERT INTO probe VALUES (%s)", (round_,))
        row = conn.execute("SELECT count(*) FROM probe").fetchone()
        assert row == (1,)


def test_fresh_databases_are_distinct(postgres_url: str, fresh_postgres_url: str) -> None:
    assert postgres_url.rsplit("/", 1)[1] != fresh_postgres_url.rsplit("/", 1)[1]
