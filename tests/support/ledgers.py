"""Ledger fixtures shared by the ledger's contract, property and concurrency tests: one
fixture parametrised over every backend (memory, SQLite file, PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from threadline.app.settings import load_settings
from threadline.ledger.envelope import NewEvent
from threadline.ledger.store import Ledger, open_ledger

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def ledger_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    if backend == "postgres":
        url: str = request.getfixturevalue("fresh_postgres_url")
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


def open_configured(url: str | None = None, **kwargs: Any) -> Ledger:
    """`open_ledger` with the ledger section read from this process's environment now: the
    test (or worker process) is the composition root, configured by `monkeypatch.setenv`."""
    return open_ledger(url, settings=load_settings().ledger, **kwargs)


def started(channel: str = "chat", **kw: Any) -> NewEvent:
    return NewEvent("ConversationStarted", {"channel": channel}, **kw)


def message(text: str = "hello", role: str = "visitor", **kw: Any) -> NewEvent:
    return NewEvent("MessagePosted", {"role": role, "text": text}, **kw)


def race_worker(url: str, conversation_id: str, barrier: Any, results: Any, rounds: int) -> None:
    """Runs in a separate process: first one racing append at expected version 1 (exactly
    one process may win), then `rounds` appends with read-version/retry-on-conflict."""
    from threadline.ledger.errors import ConcurrencyConflictError

    store = open_configured(url)
    try:
        barrier.wait(timeout=60)
        try:
            store.append(conversation_id, message("race"), expected_version=1)
            results.put(("race", "won"))
        except ConcurrencyConflictError:
            results.put(("race", "conflict"))
        conflicts = 0
        for i in range(rounds):
            event = message(f"round {i}")
            while True:
                version = store.version(conversation_id)
                try:
                    store.append(conversation_id, event, expected_version=version)
                    break
                except ConcurrencyConflictError:
                    conflicts += 1
            results.put(("appended", str(event.event_id)))
        results.put(("conflicts", conflicts))
    finally:
        store.close()


def crash_worker(url: str, journal: str, ready: Any) -> None:
    """Appends forever, journaling each event id before ("try") and after ("ok") its append;
    the parent SIGKILLs this process at an arbitrary moment."""
    import os

    store = open_configured(url)
    with open(journal, "a", encoding="utf-8") as log:
        i = 0
        while True:
            event = message(f"crash {i}", event_id=uuid.UUID(int=i + 1))
            log.write(f"try {event.event_id}\n")
            log.flush()
            os.fsync(log.fileno())
            store.append("crash", event)
            log.write(f"ok {event.event_id}\n")
            log.flush()
            os.fsync(log.fileno())
            if i == 5:
                ready.set()
            i += 1
