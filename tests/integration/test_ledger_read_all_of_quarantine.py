"""`Ledger.read_all_of` (the handoff-expiry scan's typed read of the global log) with one
damaged row of a wanted type: the other conversations are still read, the damaged one is
quarantined (named, with the error at the damaged position) — not skipped silently and not a
crash of the reader — on SQLite and PostgreSQL, in a process that never called `read_all`."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.support.ledgers import open_configured, started
from threadline.ledger.envelope import NewEvent
from threadline.ledger.errors import IntegrityViolationError
from threadline.ledger.events import HandoffOffered

Damage = Callable[[str, int], None]
WANTED = {"HandoffOffered"}


def _offer(handoff_id: str) -> NewEvent:
    return NewEvent("HandoffOffered", HandoffOffered(handoff_id=handoff_id, channel="webrtc"))


@pytest.fixture(autouse=True)
def _clear_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_PRIVACY", "off")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, Damage]:
    if request.param == "sqlite":
        path = tmp_path / "q.db"
        url = f"sqlite:///{path}"

        def damage(conversation_id: str, position: int) -> None:
            con = sqlite3.connect(path)
            try:
                done = con.execute(
                    "UPDATE stored_events SET state=? "
                    "WHERE originator_id=? AND originator_version=?",
                    (b"\x00not json", conversation_id, position),
                )
                assert done.rowcount == 1  # the damage landed (as on PostgreSQL)
                con.commit()
            finally:
                con.close()

    else:
        url = request.getfixturevalue("fresh_postgres_url")

        def damage(conversation_id: str, position: int) -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                done = conn.execute(
                    "UPDATE stored_events SET state = %s "
                    "WHERE originator_id = %s AND originator_version = %s",
                    (b"\x00not json", conversation_id, position),
                )
                assert done.rowcount == 1

    monkeypatch.setenv("THREADLINE_DATABASE_URL", url)
    with open_configured(url) as ledger:
        for c in ("c1", "c2", "c3"):
            ledger.append_batch(c, [started(), _offer(f"{c}-h1")])
    return url, damage


def test_a_damaged_wanted_row_quarantines_its_conversation_only(
    store: tuple[str, Damage],
) -> None:
    url, damage = store
    damage("c2", 2)  # c2's HandoffOffered
    with open_configured(url) as ledger:
        last = ledger.max_sequence()
        events, cursor = ledger.read_all_of(WANTED)
        assert [(e.conversation_id, e.position) for e in events] == [("c1", 2), ("c3", 2)]
        assert [e.data.handoff_id for e in events] == ["c1-h1", "c3-h1"]  # type: ignore[attr-defined]
        assert cursor == last  # the reader moved past the damage: not stuck on it
        quarantined = ledger.quarantined()
        assert set(quarantined) == {"c2"}
        assert quarantined["c2"].position == 2
        with pytest.raises(IntegrityViolationError) as info:
            ledger.read("c2")
        assert info.value.position == 2
        assert [e.type for e in ledger.read("c1")] == ["ConversationStarted", "HandoffOffered"]
        # The reader goes on delivering the other conversations' later events.
        ledger.append("c3", _offer("c3-h2"))
        more, after = ledger.read_all_of(WANTED, cursor)
        assert [(e.conversation_id, e.position) for e in more] == [("c3", 3)]
        assert after == ledger.max_sequence()


def test_damage_in_a_row_of_another_type_quarantines_nothing_here(
    store: tuple[str, Damage],
) -> None:
    """As documented: rows of other types are not decoded by `read_all_of`, so their damage
    is left to the readers that decode them (`read`, `read_all`, the audit)."""
    url, damage = store
    damage("c2", 1)  # c2's ConversationStarted, not a wanted type
    with open_configured(url) as ledger:
        events, _ = ledger.read_all_of(WANTED)
        assert [e.conversation_id for e in events] == ["c1", "c2", "c3"]
        assert ledger.quarantined() == {}
        ledger.read_all()
        assert set(ledger.quarantined()) == {"c2"}
