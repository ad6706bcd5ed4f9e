"""The consumer's metrics view on PostgreSQL (leaf adapter: psycopg via eventsourcing).

It is `threadline.projections.view_postgres.PostgresMetricsView` in its own schema (default
`threadline_consumer`), so it never shares tables — or a tracking position — with the
view the API's in-process runner keeps from the global log in the same database.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import psycopg
from eventsourcing.postgres import PostgresDatastore
from psycopg.conninfo import conninfo_to_dict
from psycopg.sql import SQL, Identifier

from threadline.streaming.errors import StreamConfigurationError

if TYPE_CHECKING:
    from threadline.projections.view_postgres import PostgresMetricsView

_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def open_postgres_consumer_view(url: str, schema: str) -> PostgresMetricsView:
    # Imported here: a leaf adapter module is loaded only where it is chosen.
    from threadline.projections.view_postgres import PostgresMetricsView

    if not _SCHEMA.fullmatch(schema):
        raise StreamConfigurationError(f"unusable schema name {schema!r}")
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema)))
    params = conninfo_to_dict(url)
    datastore = PostgresDatastore(
        dbname=str(params.get("dbname") or ""),
        host=str(params.get("host") or "localhost"),
        port=str(params.get("port") or "5432"),
        user=str(params.get("user") or ""),
        password=str(params.get("password") or ""),
        connect_timeout=10,
        pool_size=2,
        schema=schema,
    )
    view = PostgresMetricsView(datastore)
    view.create_table()
    return view
