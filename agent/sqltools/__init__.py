"""The agent's tools over real tables in the configured database.

`open_tool_backend(url)` picks the backend from the database URL (the same
`THREADLINE_DATABASE_URL` the ledger uses): ``sqlite:///path`` (default), ``memory://`` (an
in-process SQLite database), ``postgresql://...`` (psycopg, loaded only then). `seed()` fills
the demo data the `threadline seed` command and the demo use.
"""

from __future__ import annotations

from threadline.agent.sqltools.sql import SqlToolBackend
from threadline.ledger.backends import Backend, Kind


def open_tool_backend(url: str) -> SqlToolBackend:
    backend = Backend.parse(url)
    if backend.kind is Kind.POSTGRES:
        from threadline.agent.sqltools.postgres import PostgresToolBackend

        return PostgresToolBackend(backend.dsn)
    from threadline.agent.sqltools.sqlite import SqliteToolBackend

    if backend.in_memory:
        return SqliteToolBackend(":memory:")
    assert backend.path is not None
    return SqliteToolBackend(backend.path)
