"""The agent's tools over real tables in the configured database.

`open_tool_backend(url)` picks the backend from the database URL (the same
`THREADLINE_DATABASE_URL` the ledger uses): ``sqlite:///path`` (default), ``memory://`` (an
in-process SQLite database), ``postgresql://...`` (psycopg, loaded only then). `seed()` fills
the demo data the `threadline seed` command and the demo use.
"""

from __future__ import annotations

from threadline.agent.sqltools.sql import SqlToolBackend


def open_tool_backend(url: str) -> SqlToolBackend:
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        from threadline.agent.sqltools.postgres import PostgresToolBackend

        return PostgresToolBackend(url.replace("postgresql+psycopg://", "postgresql://", 1))
    from threadline.agent.sqltools.sqlite import SqliteToolBackend

    if url.startswith("memory://") or url in ("sqlite://", "sqlite:///:memory:"):
        return SqliteToolBackend(":memory:")
    if url.startswith("sqlite:///"):
        return SqliteToolBackend(url[len("sqlite:///") :])
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]}")
