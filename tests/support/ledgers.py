"""Ledger fixtures shared by the ledger's contract, property and concurrency tests: one
fixture parametrised over every backend (memory, SQLite file, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.envelope import NewEvent
from ledger.store import Ledger, open_ledger

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
]


def ledger_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    if backend == "postgres":
        url: str = request.getfixturevalue("postgres_database_url")
        return url
    raise AssertionError(backend)


@pytest.fixture(params=BACKENDS)
def ledger_url_any(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return ledger_url(request.param, tmp_path, request)


@pytest.fixture
def ledger(ledger_url_any: str) -> Iterator[Ledger]:
    store = open_ledger(ledger_url_any)
    try:
        yield store
    finally:
        store.close()


def started(channel: str = "chat", **kw: Any) -> NewEvent:
    return NewEvent("ConversationStarted", {"channel": channel}, **kw)


def message(text: str = "hello", role: str = "visitor", **kw: Any) -> NewEvent:
    return NewEvent("MessagePosted", {"role": role, "text": text}, **kw)
