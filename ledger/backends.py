"""Chooses the backend from a database URL. Backends are imported lazily, so psycopg is only
loaded for `postgresql://` URLs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit
from uuid import uuid4

from eventsourcing.persistence import PersistenceError

from threadline.ledger.errors import StoreUnavailableError
from threadline.ledger.recorders import LedgerRecorder, POPOLedgerRecorder, SQLiteLedgerRecorder

Opened = tuple[LedgerRecorder, Callable[[], None]]


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def open_recorder(url: str) -> Opened:
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if url == "memory://":
        return POPOLedgerRecorder(), lambda: None
    if scheme == "sqlite":
        return _open_sqlite(url)
    if scheme in ("postgresql", "postgres"):
        from threadline.ledger.postgres import open_postgres

        return open_postgres(url)
    raise StoreUnavailableError(
        f"unsupported database URL {redact(url)!r}: use memory://, sqlite:///PATH "
        "or postgresql://USER@HOST:PORT/DB"
    )


def sqlite_path(url: str) -> str:
    """`sqlite:///rel/path`, `sqlite:////abs/path`, `sqlite:///:memory:` → SQLite db name."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise StoreUnavailableError(f"invalid SQLite URL {url!r}: use sqlite:///PATH")
    path = url[len(prefix) :]
    if path == ":memory:":
        # A named shared-cache memory database, so that the pool's connections share it.
        return f"file:threadline-{uuid4().hex}?mode=memory&cache=shared"
    return path


def _open_sqlite(url: str) -> Opened:
    from eventsourcing.sqlite import SQLiteDatastore

    db_name = sqlite_path(url)
    if not db_name.startswith("file:"):
        parent = Path(db_name).parent
        if not parent.is_dir():
            raise StoreUnavailableError(f"cannot open {url!r}: directory {parent} does not exist")
    datastore = SQLiteDatastore(db_name=db_name, originator_id_type="text")
    try:
        recorder = SQLiteLedgerRecorder(datastore)
        recorder.create_table()
    except PersistenceError as exc:
        datastore.close()
        raise StoreUnavailableError(f"cannot open {url!r}: {exc}") from exc
    return recorder, datastore.close
