"""The console's tenant check reads a conversation's tenant once per process: counted in SQL
statements on a real SQLite ledger (the first-event read is one SELECT on stored_events)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from threadline.channels.console.routes import Console, foreign
from threadline.channels.console.tenancy import ConversationTenants
from threadline.channels.console.wiring import build_console
from threadline.ledger.envelope import NewEvent
from threadline.ledger.events import ConversationStarted, MessagePosted
from threadline.ledger.store import Ledger, open_ledger


class Statements:
    """Every SQL statement run on the events table by any connection opened meanwhile."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def trace(self, statement: str) -> None:
        if "stored_events" in statement:
            self.seen.append(statement)

    def during(self, call: Any, *args: Any) -> tuple[Any, int]:
        before = len(self.seen)
        result = call(*args)
        return result, len(self.seen) - before


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Statements:
    counter = Statements()
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        con: sqlite3.Connection = connect(*args, **kwargs)
        con.set_trace_callback(counter.trace)
        return con

    monkeypatch.setattr(sqlite3, "connect", traced)
    return counter


@pytest.fixture
def ledger(tmp_path: Path, statements: Statements) -> Iterator[Ledger]:
    ledger = open_ledger(f"sqlite:///{tmp_path / 'threadline.db'}")
    yield ledger
    ledger.close()


@pytest.fixture
def console(ledger: Ledger, tmp_path: Path) -> Console:
    return build_console(ledger, f"sqlite:///{tmp_path / 'threadline.db'}")


def start(ledger: Ledger, conversation_id: str, tenant: str) -> None:
    data = ConversationStarted(channel="chat", tenant=tenant)
    ledger.append(conversation_id, NewEvent("ConversationStarted", data), expected_version=0)
    ledger.append(
        conversation_id, NewEvent("MessagePosted", MessagePosted(role="visitor", text="hi"))
    )


def test_a_tenant_check_reads_the_ledger_once(
    ledger: Ledger, console: Console, statements: Statements
) -> None:
    start(ledger, "c-acme", "acme")
    answer, first = statements.during(foreign, console, "acme", "c-acme")
    assert answer is None
    assert first == 1  # the first event, once
    for _ in range(3):
        answer, again = statements.during(foreign, console, "acme", "c-acme")
        assert (answer, again) == (None, 0)
    refused, again = statements.during(foreign, console, "globex", "c-acme")
    assert refused is not None
    assert (refused.status_code, again) == (404, 0)


def test_a_conversation_not_started_yet_is_not_cached(
    ledger: Ledger, console: Console, statements: Statements
) -> None:
    refused, reads = statements.during(foreign, console, "acme", "c-later")
    assert refused is not None
    assert (refused.status_code, reads) == (404, 1)
    start(ledger, "c-later", "acme")
    # Started since: seen with its own tenant, not a remembered "no such conversation".
    answer, reads = statements.during(foreign, console, "acme", "c-later")
    assert (answer, reads) == (None, 1)
    assert statements.during(foreign, console, "acme", "c-later") == (None, 0)


def test_the_cache_is_bounded_least_recently_used_out(
    ledger: Ledger, statements: Statements
) -> None:
    for cid in ("a", "b", "c"):
        start(ledger, cid, "acme")
    tenants = ConversationTenants(ledger, max_entries=2)
    assert [statements.during(tenants.tenant_of, c)[1] for c in ("a", "b", "a", "c")] == [
        1,
        1,
        0,  # "a" is used again, so "b" is the one that goes
        1,
    ]
    assert len(tenants) == 2
    assert statements.during(tenants.tenant_of, "a") == ("acme", 0)
    assert statements.during(tenants.tenant_of, "b") == ("acme", 1)
