"""Where the relay has got to in the global log, stored durably next to the ledger.

The relay's checkpoint is a projections `TrackingState` (position plus pending gaps) and
changes only through `record(batch)`, one transaction, after the broker acknowledged the
batch. `check_batch` is re-run inside that transaction, so a second relay that published
the same batch fails (`IntegrityError`) instead of moving the position twice.

Backends: `MemoryCheckpoint` (tests, `memory://` ledgers), `SqliteCheckpoint` (stdlib
sqlite3, the ledger's file) and `checkpoint_postgres.PostgresCheckpoint` (psycopg).
"""

# Table names are constants; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod

from threadline.ledger.backends import Backend, Kind, sqlite_path
from threadline.ledger.errors import StoreUnavailableError
from threadline.projections.views import Batch, TrackingState, check_batch
from threadline.streaming.errors import StreamConfigurationError

T_POSITIONS = "relay_checkpoints"
T_GAPS = "relay_gaps"


class Checkpoint(ABC):
    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def tracking(self) -> TrackingState: ...

    @abstractmethod
    def record(self, batch: Batch) -> None:
        """Moves the position and the gap set as `batch` says, in one transaction."""

    @abstractmethod
    def reset(self) -> None:
        """Back to position 0: the next relay run republishes the whole log."""

    def lead(self) -> bool:
        """Whether this process may publish now (one active relay per checkpoint name)."""
        return True

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        pass


def apply_batch(state: TrackingState, batch: Batch) -> TrackingState:
    check_batch(state, batch)
    gaps = {s: t for s, t in state.gaps.items() if s not in {*batch.filled, *batch.dropped}}
    gaps.update(batch.new_gaps)
    position = batch.position if batch.position is not None else state.position
    return TrackingState(position, gaps)


class MemoryCheckpoint(Checkpoint):
    def __init__(self, name: str = "relay") -> None:
        super().__init__(name)
        self._state = TrackingState()
        self._lock = threading.Lock()

    def tracking(self) -> TrackingState:
        with self._lock:
            return TrackingState(self._state.position, dict(self._state.gaps))

    def record(self, batch: Batch) -> None:
        with self._lock:
            self._state = apply_batch(self._state, batch)

    def reset(self) -> None:
        with self._lock:
            self._state = TrackingState()


class SqliteCheckpoint(Checkpoint):
    def __init__(self, path: str, name: str = "relay") -> None:
        super().__init__(name)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {T_POSITIONS} "
                "(name TEXT PRIMARY KEY, position INTEGER NOT NULL)"
            )
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {T_GAPS} (name TEXT NOT NULL, "
                "sequence INTEGER NOT NULL, first_seen REAL NOT NULL, PRIMARY KEY (name, sequence))"
            )

    def _read(self) -> TrackingState:
        row = self._db.execute(
            f"SELECT position FROM {T_POSITIONS} WHERE name = ?", (self.name,)
        ).fetchone()
        gaps = self._db.execute(
            f"SELECT sequence, first_seen FROM {T_GAPS} WHERE name = ?", (self.name,)
        ).fetchall()
        return TrackingState(int(row[0]) if row else 0, {int(s): float(t) for s, t in gaps})

    def tracking(self) -> TrackingState:
        with self._lock:
            return self._read()

    def record(self, batch: Batch) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                new = apply_batch(self._read(), batch)
                self._db.execute(
                    f"INSERT INTO {T_POSITIONS} (name, position) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                    (self.name, new.position),
                )
                self._db.execute(f"DELETE FROM {T_GAPS} WHERE name = ?", (self.name,))
                self._db.executemany(
                    f"INSERT INTO {T_GAPS} (name, sequence, first_seen) VALUES (?, ?, ?)",
                    [(self.name, s, t) for s, t in sorted(new.gaps.items())],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def reset(self) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(f"DELETE FROM {T_POSITIONS} WHERE name = ?", (self.name,))
            self._db.execute(f"DELETE FROM {T_GAPS} WHERE name = ?", (self.name,))
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_checkpoint(url: str, name: str = "relay") -> Checkpoint:
    """The checkpoint in the ledger's own database (`url` is THREADLINE_DATABASE_URL)."""
    try:
        backend = Backend.parse(url)
    except StoreUnavailableError as exc:
        raise StreamConfigurationError(f"relay checkpoint: {exc}") from None
    if backend.kind is Kind.MEMORY:
        return MemoryCheckpoint(name)
    if backend.kind is Kind.SQLITE:
        return SqliteCheckpoint(sqlite_path(url), name)
    from threadline.streaming.checkpoint_postgres import PostgresCheckpoint

    return PostgresCheckpoint(backend.dsn, name)
