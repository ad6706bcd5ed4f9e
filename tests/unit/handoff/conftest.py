"""Fixtures shared by the handoff unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from tests.unit.handoff.handoff_helpers import NOW
from threadline.agent.sqltools import open_tool_backend
from threadline.agent.sqltools.seed import seed
from threadline.agent.sqltools.sql import SqlToolBackend


@pytest.fixture
def tools() -> Iterator[SqlToolBackend]:
    """The in-memory tool backend, seeded, its clock held at NOW (claims dated from it)."""
    backend = open_tool_backend("memory://")
    backend._clock = lambda: NOW
    seed(backend, today=date(2026, 11, 20))
    yield backend
    backend.close()
