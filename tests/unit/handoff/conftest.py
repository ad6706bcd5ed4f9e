"""Fixtures shared by the handoff unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.tools import seeded_tools
from tests.unit.handoff.handoff_helpers import NOW, start_chat
from threadline.agent.sqltools.sql import SqlToolBackend
from threadline.ledger.store import Ledger, open_ledger


@pytest.fixture
def tools() -> Iterator[SqlToolBackend]:
    """The in-memory tool backend, seeded, its clock held at NOW (claims dated from it)."""
    with seeded_tools(NOW) as backend:
        yield backend


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    """An in-memory ledger with chat "A" started (a test module that needs another start
    defines its own `ledger`, which pytest prefers to this one)."""
    store = open_ledger("memory://")
    start_chat(store, "A")
    yield store
    store.close()
