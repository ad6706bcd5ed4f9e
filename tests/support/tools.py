"""The agent's tool tables as unit tests use them: an in-process SQLite database filled with the
demo seed. The backend's clock is held at the test's `now` because claims and callback slots
are dated from it; a test that let it run on wall time would see other ids and dates."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime

from threadline.agent.sqltools.seed import seed
from threadline.agent.sqltools.sql import SqlToolBackend
from threadline.agent.sqltools.sqlite import SqliteToolBackend


@contextmanager
def seeded_tools(now: datetime, today: date | None = None) -> Iterator[SqlToolBackend]:
    """Seeded tool tables dated from `today` (`now`'s date unless given), closed on exit."""
    backend = SqliteToolBackend(":memory:", clock=lambda: now)
    seed(backend, today=today or now.date())
    try:
        yield backend
    finally:
        backend.close()
