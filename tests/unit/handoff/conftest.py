"""Fixtures shared by the handoff unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.tools import seeded_tools
from tests.unit.handoff.handoff_helpers import NOW
from threadline.agent.sqltools.sql import SqlToolBackend


@pytest.fixture
def tools() -> Iterator[SqlToolBackend]:
    """The in-memory tool backend, seeded, its clock held at NOW (claims dated from it)."""
    with seeded_tools(NOW) as backend:
        yield backend
