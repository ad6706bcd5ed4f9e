"""The operator store contract, run against every backend: memory, SQLite and a real
PostgreSQL cluster (the shared throwaway fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from threadline.channels.console.errors import (
    OperatorExistsError,
    OperatorNotFoundError,
    OperatorStoreUnavailableError,
)
from threadline.channels.console.operators import (
    MemoryOperatorStore,
    Operator,
    OperatorStore,
    Session,
)
from threadline.channels.console.operators_sql import (
    SqliteOperatorStore,
    SqlOperatorStore,
    open_operator_store,
)

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OperatorStore]:
    if request.param == "postgres":
        s = open_operator_store(request.getfixturevalue("fresh_postgres_url"))
    elif request.param == "sqlite":
        s = SqliteOperatorStore(tmp_path / "o.db")
    else:
        s = MemoryOperatorStore()
    yield s
    s.close()


def test_store_adds_and_reads_operators(store: OperatorStore) -> None:
    store.add_operator(Operator("bob", "h1", T0))
    store.add_operator(Operator("alice", "h2", T0))
    assert store.get_operator("bob") == Operator("bob", "h1", T0)
    assert store.get_operator("carol") is None
    assert [op.name for op in store.list_operators()] == ["alice", "bob"]
    with pytest.raises(OperatorExistsError):
        store.add_operator(Operator("bob", "other", T0))
    assert store.get_operator("bob") == Operator("bob", "h1", T0)


def test_store_changes_password_hash(store: OperatorStore) -> None:
    store.add_operator(Operator("bob", "h1", T0))
    store.set_password_hash("bob", "h2")
    assert store.get_operator("bob") == Operator("bob", "h2", T0)
    with pytest.raises(OperatorNotFoundError):
        store.set_password_hash("nobody", "h")


def test_store_sessions_expire_and_go_with_their_operator(store: OperatorStore) -> None:
    store.add_operator(Operator("bob", "h", T0))
    store.add_operator(Operator("amy", "h", T0))
    old = Session("d1", "bob", T0, T0 + timedelta(minutes=1))
    new = Session("d2", "bob", T0, T0 + timedelta(hours=1))
    amy = Session("d3", "amy", T0, T0 + timedelta(hours=1))
    for s in (old, new, amy):
        store.add_session(s)
    assert store.get_session("d1") == old
    assert store.delete_expired_sessions(T0 + timedelta(minutes=5)) == 1
    assert store.get_session("d1") is None
    assert store.get_session("d2") == new
    store.delete_session("d2")
    assert store.get_session("d2") is None
    store.delete_operator("amy")
    assert store.get_session("d3") is None
    assert store.get_operator("amy") is None
    with pytest.raises(OperatorNotFoundError):
        store.delete_operator("amy")


def test_store_presence_is_a_heartbeat_per_tenant(store: OperatorStore) -> None:
    for name in ("amy", "bob", "cat"):
        store.add_operator(Operator(name, "h", T0))
    store.set_presence("amy", "acme", True, T0)
    store.set_presence("bob", "*", True, T0 + timedelta(seconds=30))
    store.set_presence("cat", "acme", False, T0 + timedelta(seconds=30))
    assert store.available_operators(None, T0 - timedelta(seconds=1)) == ["amy", "bob"]
    assert store.available_operators("acme", T0 - timedelta(seconds=1)) == ["amy", "bob"]
    assert store.available_operators("other", T0 - timedelta(seconds=1)) == ["bob"]
    # amy's last heartbeat is older than the window: she has dropped out.
    assert store.available_operators("acme", T0 + timedelta(seconds=10)) == ["bob"]
    store.set_presence("bob", "*", False, T0 + timedelta(seconds=40))
    assert store.available_operators(None, T0 + timedelta(seconds=10)) == []
    store.set_presence("amy", "acme", True, T0 + timedelta(seconds=50))
    store.delete_operator("amy")
    assert store.available_operators(None, T0) == []


def test_store_deletes_all_sessions_of_one_operator(store: OperatorStore) -> None:
    store.add_operator(Operator("bob", "h", T0))
    store.add_operator(Operator("amy", "h", T0))
    store.add_session(Session("b1", "bob", T0, T0 + timedelta(hours=1)))
    store.add_session(Session("b2", "bob", T0, T0 + timedelta(hours=1)))
    store.add_session(Session("a1", "amy", T0, T0 + timedelta(hours=1)))
    store.delete_sessions_of("bob")
    assert store.get_session("b1") is None
    assert store.get_session("b2") is None
    assert store.get_session("a1") is not None


def test_sqlite_store_survives_reopening(tmp_path: Path) -> None:
    SqliteOperatorStore(tmp_path / "o.db").add_operator(Operator("bob", "h", T0))
    assert SqliteOperatorStore(tmp_path / "o.db").get_operator("bob") == Operator("bob", "h", T0)


def test_open_operator_store_by_url(tmp_path: Path) -> None:
    assert isinstance(open_operator_store("memory://"), MemoryOperatorStore)
    assert isinstance(open_operator_store(f"sqlite:///{tmp_path}/x.db"), SqliteOperatorStore)
    with pytest.raises(OperatorStoreUnavailableError):
        open_operator_store("mysql://x")
    with pytest.raises(OperatorStoreUnavailableError):
        open_operator_store(f"sqlite:///{tmp_path}/missing-dir/x.db")


@pytest.mark.postgres
def test_postgres_store_is_chosen_by_url_and_survives_reopening(fresh_postgres_url: str) -> None:
    open_operator_store(fresh_postgres_url).add_operator(Operator("bob", "h", T0))
    again = open_operator_store(fresh_postgres_url)
    assert type(again).__name__ == "PostgresOperatorStore"
    assert again.get_operator("bob") == Operator("bob", "h", T0)


def test_unreachable_postgres_is_a_clear_error() -> None:
    with pytest.raises(OperatorStoreUnavailableError):
        open_operator_store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")


def test_store_keeps_each_operators_tenant(store: OperatorStore) -> None:
    store.add_operator(Operator("ann", "h1", T0, "acme"))
    store.add_operator(Operator("gus", "h2", T0, "globex"))
    store.add_operator(Operator("sup", "h3", T0))
    store.set_password_hash("ann", "h4")  # a new password keeps the tenant
    assert store.get_operator("ann") == Operator("ann", "h4", T0, "acme")
    assert [(op.name, op.tenant) for op in store.list_operators()] == [
        ("ann", "acme"),
        ("gus", "globex"),
        ("sup", "*"),
    ]


def test_an_operator_table_from_before_tenants_gains_the_column(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE console_operators (name TEXT PRIMARY KEY, "
            "password_hash TEXT NOT NULL, created_at TEXT NOT NULL)"
        )
        conn.execute(
            "INSERT INTO console_operators VALUES ('old', 'h', '2025-01-01T12:00:00.000000+00:00')"
        )
    conn.close()
    store = SqliteOperatorStore(path)
    assert store.get_operator("old") == Operator("old", "h", T0, "*")
    store.add_operator(Operator("new", "h", T0, "acme"))
    assert SqliteOperatorStore(path).get_operator("new") == Operator("new", "h", T0, "acme")


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_the_login_throttle_is_one_budget_across_replicas(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Two stores on one database stand for two replicas (issue 18): failures made through
    one count on the other, a success clears the name on both, and the window still ends."""
    from threadline.channels.console.errors import TooManyAttemptsError
    from threadline.channels.console.operators import LoginThrottle

    url = (
        request.getfixturevalue("fresh_postgres_url")
        if backend == "postgres"
        else f"sqlite:///{tmp_path / 'o.db'}"
    )
    now = [T0]
    stores = [open_operator_store(url) for _ in range(2)]
    try:
        shared = [s for s in stores if isinstance(s, SqlOperatorStore)]
        assert len(shared) == 2
        a, b = (LoginThrottle(3, 60, lambda: now[0], failures=s) for s in shared)
        for throttle in (a, b, a):
            throttle.check("name:bob", "client:1.2.3.4")
            throttle.fail("name:bob", "client:1.2.3.4")
            now[0] += timedelta(seconds=1)
        with pytest.raises(TooManyAttemptsError) as refused:
            b.check("name:bob")
        assert refused.value.retry_after == 58  # the oldest failure leaves at T0 + 60 s
        with pytest.raises(TooManyAttemptsError):
            a.check("client:1.2.3.4")
        b.succeed("name:bob")  # a success clears the name, not the client address
        a.check("name:bob")
        with pytest.raises(TooManyAttemptsError):
            b.check("client:1.2.3.4")
        now[0] = T0 + timedelta(seconds=61)  # the first failure has left the window
        b.check("client:1.2.3.4")
    finally:
        for s in stores:
            s.close()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_the_failure_table_holds_no_name_or_address_and_only_one_window(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from threadline.channels.console.operators import LoginThrottle
    from threadline.channels.console.operators_sql import failure_digest

    url = (
        request.getfixturevalue("fresh_postgres_url")
        if backend == "postgres"
        else f"sqlite:///{tmp_path / 'o.db'}"
    )
    now = [T0]
    store = open_operator_store(url)
    try:
        assert isinstance(store, SqlOperatorStore)
        throttle = LoginThrottle(3, 60, lambda: now[0], failures=store)
        throttle.fail("name:bob", "client:198.51.100.7")
        rows = store._run("SELECT key, at FROM console_login_failures")
        assert len(rows) == 2
        stored = " ".join(str(r) for r in rows)
        assert "bob" not in stored
        assert "198.51.100.7" not in stored
        assert {r[0] for r in rows} == {
            failure_digest("name:bob"),
            failure_digest("client:198.51.100.7"),
        }
        assert store.recent_login_failures("name:bob", T0 - timedelta(seconds=1))[0] == 1
        # Past the window, another key's failure purges every old row, whatever its key.
        now[0] = T0 + timedelta(seconds=61)
        throttle.fail("name:carol")
        rows = store._run("SELECT key FROM console_login_failures")
        assert [r[0] for r in rows] == [failure_digest("name:carol")]
    finally:
        store.close()


def test_a_failure_secret_keys_the_digest(tmp_path: Path) -> None:
    from threadline.channels.console.operators_sql import failure_digest

    store = open_operator_store(f"sqlite:///{tmp_path / 'o.db'}", failure_secret=b"s" * 32)
    assert isinstance(store, SqlOperatorStore)
    store.add_login_failures(["name:bob"], T0, T0 - timedelta(seconds=60))
    [(key,)] = store._run("SELECT key FROM console_login_failures")
    assert key == failure_digest("name:bob", b"s" * 32) != failure_digest("name:bob")
    assert key.startswith("hmac:")
    assert store.recent_login_failures("name:bob", T0 - timedelta(seconds=1))[0] == 1
