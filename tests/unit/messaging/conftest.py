"""These tests build messaging services without the bootstrap, so they register the event
types themselves, as every entry point does at start-up."""

from __future__ import annotations

import pytest

from threadline.app.events import register_event_types


@pytest.fixture(autouse=True, scope="session")
def _event_types() -> None:
    register_event_types()
