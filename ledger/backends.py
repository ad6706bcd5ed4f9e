"""The one backend dispatch: `Backend.parse(url)` says which kind of database a URL names
(memory, SQLite, PostgreSQL) and where; every store (ledger, keys, views, checkpoints, tools,
operators) dispatches on `Backend.kind` instead of testing URL prefixes itself. The ledger's
recorder is opened here; backends are imported lazily, so psycopg is only loaded for
`postgresql://` URLs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit
from uuid import uuid4

from eventsourcing.persistence import PersistenceError

from threadline.ledger.errors import StoreUnavailableError
from threadline.ledger.recorders import LedgerRecorder, POPOLedgerRecorder
from threadline.ledger.settings import LedgerSettings

Opened = tuple[LedgerRecorder, Callable[[], None]]

SQLITE_PREFIX = "sqlite:///"
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


class Kind(StrEnum):
    MEMORY = "memory"
    SQLITE = "sqlite"
    POSTGRES = "postgresql"


@dataclass(frozen=True, slots=True)
class Backend:
    """A parsed database URL: `memory://`, `sqlite:///PATH` (`sqlite:///:memory:` for an
    in-process SQLite database) or `postgresql://USER@HOST:PORT/DB`."""

    kind: Kind
    url: str
    path: str | None = None  # SQLite only: the file, or ":memory:"

    @classmethod
    def parse(cls, url: str) -> Backend:
        """Raises StoreUnavailableError (naming the accepted forms) for anything else."""
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if url == "memory://":
            return cls(Kind.MEMORY, url)
        if scheme == "sqlite":
            if not url.startswith(SQLITE_PREFIX) or len(url) == len(SQLITE_PREFIX):
                raise StoreUnavailableError(f"invalid SQLite URL {url!r}: use sqlite:///PATH")
            return cls(Kind.SQLITE, url, url[len(SQLITE_PREFIX) :])
        if scheme in _POSTGRES_SCHEMES:
            return cls(Kind.POSTGRES, url)
        raise StoreUnavailableError(
            f"unsupported database URL {redact(url)!r}: use memory://, sqlite:///PATH "
            "or postgresql://USER@HOST:PORT/DB"
        )

    @property
    def in_memory(self) -> bool:
        """Nothing survives the process (memory://, or SQLite's :memory:)."""
        return self.kind is Kind.MEMORY or self.path == ":memory:"

    @property
    def dsn(self) -> str:
        """The URL as psycopg takes it (PostgreSQL only)."""
        scheme, rest = self.url.split(":", 1)
        return "postgresql:" + rest if scheme.lower() in _POSTGRES_SCHEMES else self.url


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def open_recorder(url: str, settings: LedgerSettings | None = None) -> Opened:
    backend = Backend.parse(url)
    if backend.kind is Kind.MEMORY:
        return POPOLedgerRecorder(), lambda: None
    if backend.kind is Kind.SQLITE:
        return _open_sqlite(url, settings.log_partitions if settings else 1)
    from threadline.ledger.postgres import open_postgres

    return open_postgres(backend.dsn, settings)


def sqlite_path(url: str) -> str:
    """`sqlite:///rel/path`, `sqlite:////abs/path`, `sqlite:///:memory:` → SQLite db name."""
    backend = Backend.parse(url)
    if backend.path is None:
        raise StoreUnavailableError(f"invalid SQLite URL {url!r}: use sqlite:///PATH")
    path = backend.path
    if path == ":memory:":
        # A named shared-cache memory database, so that the pool's connections share it.
        return f"file:threadline-{uuid4().hex}?mode=memory&cache=shared"
    return path


def _open_sqlite(url: str, partitions: int = 1) -> Opened:
    from eventsourcing.sqlite import SQLiteDatastore

    db_name = sqlite_path(url)
    if not db_name.startswith("file:"):
        parent = Path(db_name).parent
        if not parent.is_dir():
            raise StoreUnavailableError(f"cannot open {url!r}: directory {parent} does not exist")
    datastore = SQLiteDatastore(db_name=db_name, originator_id_type="text")
    try:
        # -- issue 18: partitioned global log (ledger/partitions.py) --
        from threadline.ledger.partitions import open_sqlite_recorder

        recorder = open_sqlite_recorder(datastore, partitions)
        # -- end issue 18 --
    except PersistenceError as exc:
        datastore.close()
        raise StoreUnavailableError(f"cannot open {url!r}: {exc}") from exc
    return recorder, datastore.close
