"""SQL implementations of `OperatorStore`: a shared base and the SQLite backend (stdlib).

The PostgreSQL backend (`operators_postgres`) reuses the base with psycopg. The tables sit
beside the ledger's in the same database by default and are prefixed `console_`.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
from threadline.ledger.backends import Backend, Kind
from threadline.ledger.errors import StoreUnavailableError

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS console_operators (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        tenant TEXT NOT NULL DEFAULT '*')""",
    """CREATE TABLE IF NOT EXISTS console_sessions (
        token_digest TEXT PRIMARY KEY,
        operator TEXT NOT NULL REFERENCES console_operators(name) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS console_sessions_operator ON console_sessions(operator)",
    # Presence lives in the database so that every replica counts the same operators.
    """CREATE TABLE IF NOT EXISTS console_presence (
        operator TEXT PRIMARY KEY REFERENCES console_operators(name) ON DELETE CASCADE,
        tenant TEXT NOT NULL,
        available INTEGER NOT NULL,
        seen_at TEXT NOT NULL)""",
    # Failed logins, so that the login throttle is one budget across replicas (issue 18).
    # `key` is `failure_digest(throttle key)`, never an operator name or client address.
    """CREATE TABLE IF NOT EXISTS console_login_failures (
        key TEXT NOT NULL,
        at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS console_login_failures_key ON console_login_failures(key, at)",
    "CREATE INDEX IF NOT EXISTS console_login_failures_at ON console_login_failures(at)",
)

_FAILURE_DOMAIN = b"threadline/console-login-failure/v1\0"


def failure_digest(key: str, secret: bytes | None = None) -> str:
    """What the failure table stores for a throttle key ("name:bob", "client:1.2.3.4"): an
    HMAC with `secret` when the store has one, else a SHA-256 (which keeps the raw name and
    address out of the table and its backups, though a client address is guessable from
    it; a secret closes that)."""
    data = _FAILURE_DOMAIN + key.encode("utf-8")
    if secret:
        return "hmac:" + hmac.new(secret, data, hashlib.sha256).hexdigest()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _ts(value: datetime) -> str:
    # One fixed-width UTC format, so that text order is time order in both databases.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


class SqlOperatorStore(ABC):
    """Everything but connecting; `P` is the driver's placeholder."""

    P = "?"
    # The key of `failure_digest` (None: plain SHA-256); every replica must use the same.
    failure_secret: bytes | None = None

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Any]:
        """A cursor inside a transaction that commits on success and rolls back on error."""

    @abstractmethod
    def _is_unique_violation(self, exc: Exception) -> bool: ...

    def _sql(self, text: str) -> str:
        return text.replace("?", self.P)

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._transaction() as cur:
            cur.execute(self._sql(sql), tuple(params))
            return list(cur.fetchall()) if cur.description else []

    def _count(self, sql: str, params: Sequence[Any]) -> int:
        with self._transaction() as cur:
            cur.execute(self._sql(sql), tuple(params))
            return int(cur.rowcount)

    def create_schema(self) -> None:
        with self._transaction() as cur:
            for statement in SCHEMA:
                cur.execute(statement)
            # Tables made before operators had a tenant: add the column, existing operators
            # keep '*' (the console's tenant setting decides for them, as before).
            if not self._has_column(cur, "console_operators", "tenant"):
                cur.execute(
                    "ALTER TABLE console_operators ADD COLUMN tenant TEXT NOT NULL DEFAULT '*'"
                )

    @abstractmethod
    def _has_column(self, cur: Any, table: str, column: str) -> bool: ...

    def add_operator(self, operator: Operator) -> None:
        try:
            self._run(
                "INSERT INTO console_operators (name, password_hash, created_at, tenant) "
                "VALUES (?, ?, ?, ?)",
                (operator.name, operator.password_hash, _ts(operator.created_at), operator.tenant),
            )
        except Exception as exc:
            if self._is_unique_violation(exc):
                raise OperatorExistsError(f"operator {operator.name!r} already exists") from None
            raise

    def get_operator(self, name: str) -> Operator | None:
        rows = self._run(
            "SELECT name, password_hash, created_at, tenant FROM console_operators WHERE name = ?",
            (name,),
        )
        return Operator(rows[0][0], rows[0][1], _dt(rows[0][2]), rows[0][3]) if rows else None

    def list_operators(self) -> list[Operator]:
        rows = self._run(
            "SELECT name, password_hash, created_at, tenant FROM console_operators ORDER BY name"
        )
        return [Operator(r[0], r[1], _dt(r[2]), r[3]) for r in rows]

    def set_password_hash(self, name: str, password_hash: str) -> None:
        updated = self._count(
            "UPDATE console_operators SET password_hash = ? WHERE name = ?",
            (password_hash, name),
        )
        if updated == 0:
            raise OperatorNotFoundError(f"no operator {name!r}")

    def delete_operator(self, name: str) -> None:
        with self._transaction() as cur:
            cur.execute(self._sql("DELETE FROM console_sessions WHERE operator = ?"), (name,))
            cur.execute(self._sql("DELETE FROM console_operators WHERE name = ?"), (name,))
            if cur.rowcount == 0:
                raise OperatorNotFoundError(f"no operator {name!r}")

    def add_session(self, session: Session) -> None:
        self._run(
            "INSERT INTO console_sessions (token_digest, operator, created_at, expires_at) "
            "VALUES (?, ?, ?, ?)",
            (
                session.token_digest,
                session.operator,
                _ts(session.created_at),
                _ts(session.expires_at),
            ),
        )

    def get_session(self, token_digest: str) -> Session | None:
        rows = self._run(
            "SELECT token_digest, operator, created_at, expires_at FROM console_sessions "
            "WHERE token_digest = ?",
            (token_digest,),
        )
        if not rows:
            return None
        row = rows[0]
        return Session(row[0], row[1], _dt(row[2]), _dt(row[3]))

    def delete_session(self, token_digest: str) -> None:
        self._run("DELETE FROM console_sessions WHERE token_digest = ?", (token_digest,))

    def delete_sessions_of(self, name: str) -> None:
        self._run("DELETE FROM console_sessions WHERE operator = ?", (name,))

    def delete_expired_sessions(self, now: datetime) -> int:
        return self._count("DELETE FROM console_sessions WHERE expires_at <= ?", (_ts(now),))

    def set_presence(self, name: str, tenant: str, available: bool, now: datetime) -> None:
        with self._transaction() as cur:
            cur.execute(self._sql("DELETE FROM console_presence WHERE operator = ?"), (name,))
            cur.execute(
                self._sql(
                    "INSERT INTO console_presence (operator, tenant, available, seen_at) "
                    "VALUES (?, ?, ?, ?)"
                ),
                (name, tenant, 1 if available else 0, _ts(now)),
            )

    def available_operators(self, tenant: str | None, since: datetime) -> list[str]:
        sql = "SELECT operator FROM console_presence WHERE available = 1 AND seen_at > ?"
        params: list[Any] = [_ts(since)]
        if tenant is not None:
            sql += " AND (tenant = ? OR tenant = '*')"
            params.append(tenant)
        return [r[0] for r in self._run(sql + " ORDER BY operator", params)]

    # -- LoginFailureLog -------------------------------------------------------------------
    def recent_login_failures(self, key: str, since: datetime) -> tuple[int, datetime | None]:
        rows = self._run(
            "SELECT COUNT(*), MIN(at) FROM console_login_failures WHERE key = ? AND at > ?",
            (failure_digest(key, self.failure_secret), _ts(since)),
        )
        count, oldest = rows[0]
        return int(count), _dt(oldest) if oldest else None

    def add_login_failures(
        self, keys: Sequence[str], at: datetime, forget_before: datetime
    ) -> None:
        with self._transaction() as cur:
            # Rows out of the window count for nothing: every key's are dropped on each
            # insert, so the table holds one window of failures, not every failure ever.
            cur.execute(
                self._sql("DELETE FROM console_login_failures WHERE at <= ?"),
                (_ts(forget_before),),
            )
            for key in keys:
                cur.execute(
                    self._sql("INSERT INTO console_login_failures (key, at) VALUES (?, ?)"),
                    (failure_digest(key, self.failure_secret), _ts(at)),
                )

    def clear_login_failures(self, key: str) -> None:
        self._run(
            "DELETE FROM console_login_failures WHERE key = ?",
            (failure_digest(key, self.failure_secret),),
        )


class SqliteOperatorStore(SqlOperatorStore):
    """One short connection per operation: the console's traffic is light, and this stays
    correct across the threads FastAPI runs sync endpoints on."""

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._lock = threading.Lock()
        self.create_schema()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            conn = sqlite3.connect(self._path, timeout=30, isolation_level=None)
            try:
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute("BEGIN IMMEDIATE")
                cur = conn.cursor()
                try:
                    yield cur
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                conn.close()

    def _is_unique_violation(self, exc: Exception) -> bool:
        return isinstance(exc, sqlite3.IntegrityError)

    def _has_column(self, cur: Any, table: str, column: str) -> bool:
        cur.execute(f"PRAGMA table_info({table})")
        return any(row[1] == column for row in cur.fetchall())

    def close(self) -> None:
        return None


def open_operator_store(url: str, *, failure_secret: bytes | None = None) -> OperatorStore:
    """The store for a database URL: `memory://`, `sqlite:///path` or `postgresql://...`.
    `failure_secret`: the key the login-failure table's digests are made with."""
    try:
        backend = Backend.parse(url)
    except StoreUnavailableError as exc:
        raise OperatorStoreUnavailableError(f"operator store: {exc}") from None
    if backend.in_memory:
        return MemoryOperatorStore()
    if backend.kind is Kind.SQLITE:
        path = backend.path or ""
        try:
            sqlite_store = SqliteOperatorStore(path)
        except sqlite3.Error as exc:
            raise OperatorStoreUnavailableError(f"cannot open {path}: {exc}") from None
        sqlite_store.failure_secret = failure_secret
        return sqlite_store
    from threadline.channels.console.operators_postgres import PostgresOperatorStore

    postgres_store = PostgresOperatorStore(backend.dsn)
    postgres_store.failure_secret = failure_secret
    return postgres_store
