"""Tamper evidence: edit stored bytes directly in the database, then `audit verify` must fail
at the edited position (or, when the forger also recomputed the hash, at the next one)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.ledgers import message, open_configured, started
from threadline.app.cli import build
from threadline.ledger import audit, canonical
from threadline.ledger.envelope import NewEvent
from threadline.ledger.errors import IntegrityViolationError
from threadline.ledger.store import open_ledger

Edit = Callable[[bytes], bytes]


def _replace_text(state: bytes) -> bytes:
    return state.replace(b'"text":"two"', b'"text":"TWO"')


def _reformat(state: bytes) -> bytes:
    return state.replace(b'","', b'", "', 1)  # same JSON, different bytes


def _rehash(state: bytes) -> bytes:
    """A careful forger: edits the text and recomputes this record's own hash."""
    body = canonical.loads(_replace_text(state))
    del body["hash"]
    body["hash"] = canonical.sha256_hex(canonical.dumps(body))
    return canonical.dumps(body)


def _garbage(state: bytes) -> bytes:
    return b"\x00not json"


@pytest.fixture(autouse=True)
def _clear_text(monkeypatch: pytest.MonkeyPatch) -> None:
    # These edits target plaintext bytes; tampering with encrypted personal fields is
    # covered by tests/integration/test_privacy_erasure.py.
    monkeypatch.setenv("THREADLINE_PRIVACY", "off")


@pytest.fixture
def sqlite_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    path = tmp_path / "t.db"
    url = f"sqlite:///{path}"
    monkeypatch.setenv("THREADLINE_DATABASE_URL", url)
    with open_configured(url) as store:
        store.append_batch("c1", [started(), message("one"), message("two"), message("three")])
        store.append_batch("c2", [started(), message("other")])
    return url, path


def _edit_sqlite(path: Path, position: int, edit: Edit) -> None:
    con = sqlite3.connect(path)
    try:
        (state,) = con.execute(
            "SELECT state FROM stored_events WHERE originator_id='c1' AND originator_version=?",
            (position,),
        ).fetchone()
        con.execute(
            "UPDATE stored_events SET state=? WHERE originator_id='c1' AND originator_version=?",
            (edit(state), position),
        )
        con.commit()
    finally:
        con.close()


@pytest.mark.parametrize(
    ("edit", "failing_position", "reason"),
    [
        (_replace_text, 3, "hash does not match"),
        (_reformat, 3, "canonical form"),
        (_garbage, 3, "unreadable"),
        (_rehash, 4, "prev_hash"),
    ],
)
def test_sqlite_edit_is_detected_at_its_position(
    sqlite_store: tuple[str, Path], edit: Edit, failing_position: int, reason: str
) -> None:
    _, path = sqlite_store
    runner = CliRunner()
    assert runner.invoke(build(), ["audit", "verify", "c1"]).exit_code == 0
    _edit_sqlite(path, 3, edit)
    for args in (["audit", "verify", "c1"], ["audit", "verify", "--all"]):
        result = runner.invoke(build(), args)
        assert result.exit_code == 1
        assert f"conversation c1: position {failing_position}: " in result.stderr
        assert reason in result.stderr
    # The other conversation still verifies on its own.
    assert runner.invoke(build(), ["audit", "verify", "c2"]).exit_code == 0
    # Exporting a damaged conversation is an error or an export that does not verify (a
    # whitespace-only edit changes no content: its canonical export verifies).
    export = runner.invoke(build(), ["audit", "export", "c1"])
    if edit is _reformat:
        assert audit.verify_lines(export.stdout.splitlines()).events == 4
    elif export.exit_code == 0:
        lines = export.stdout.splitlines()
        with pytest.raises(IntegrityViolationError):
            audit.verify_lines(lines)
    else:
        assert export.exit_code == 1
        assert export.stderr.startswith("error: conversation c1: position 3")


def test_sqlite_deleted_or_moved_rows_are_detected(sqlite_store: tuple[str, Path]) -> None:
    url, path = sqlite_store
    con = sqlite3.connect(path)
    con.execute("DELETE FROM stored_events WHERE originator_id='c1' AND originator_version=2")
    con.commit()
    con.close()
    with open_configured(url) as store, pytest.raises(IntegrityViolationError) as info:
        audit.verify_conversation(store, "c1")
    assert info.value.position == 2
    with open_configured(url) as store, pytest.raises(IntegrityViolationError) as info:
        audit.verify_all(store)
    assert (info.value.conversation_id, info.value.position) == ("c1", 2)


def test_memory_edit_is_detected() -> None:
    from eventsourcing.persistence import StoredEvent

    from threadline.ledger.recorders import POPOLedgerRecorder

    with open_configured("memory://") as store:
        store.append_batch("c1", [started(), message("one"), message("two")])
        recorder = store.recorder
        assert isinstance(recorder, POPOLedgerRecorder)
        index = recorder._stored_events_index["c1"][3]
        s = recorder._stored_events[index]
        recorder._stored_events[index] = StoredEvent(
            s.originator_id, s.originator_version, s.topic, _replace_text(s.state)
        )
        with pytest.raises(IntegrityViolationError) as info:
            audit.verify_conversation(store, "c1")
        assert info.value.position == 3


def test_tail_truncation_and_tail_rewrite_are_detected_and_all_are_reported(
    sqlite_store: tuple[str, Path],
) -> None:
    """Issue 17, class 5: deleting a conversation's newest event, or replacing it with a
    record that chains and hashes correctly, used to pass `audit verify`; re-posting the
    deleted event then answered "duplicate" for a row that no longer exists."""
    url, path = sqlite_store
    with open_ledger(url) as store:
        gone = store.read("c1")[-1]
    con = sqlite3.connect(path)
    con.execute("DELETE FROM stored_events WHERE originator_id='c1' AND originator_version=4")
    # c2: the newest record rewritten as a different event (new id, recomputed chain+hash).
    (state,) = con.execute(
        "SELECT state FROM stored_events WHERE originator_id='c2' AND originator_version=2"
    ).fetchone()
    body = canonical.loads(state)
    body["event_id"] = "00000000-0000-4000-8000-000000000000"
    body["data"] = {"role": "visitor", "text": "forged"}
    del body["hash"]
    body["hash"] = canonical.sha256_hex(canonical.dumps(body))
    con.execute(
        "UPDATE stored_events SET state=? WHERE originator_id='c2' AND originator_version=2",
        (canonical.dumps(body),),
    )
    con.commit()
    con.close()
    with open_ledger(url) as store:
        with pytest.raises(IntegrityViolationError) as info:
            audit.verify_conversation(store, "c1")
        assert (info.value.position, "deleted" in info.value.reason) == (4, True)
        with pytest.raises(IntegrityViolationError) as info:
            audit.verify_conversation(store, "c2")
        assert info.value.position == 2
        report = audit.survey_all(store)
        assert [b.conversation_id for b in report.broken] == ["c1", "c2"]
        with pytest.raises(IntegrityViolationError):
            store.append("c1", NewEvent(gone.type, gone.data, gone.event_id))
    result = CliRunner().invoke(build(), ["audit", "verify", "--all"])
    assert result.exit_code == 1
    assert "conversation c1" in result.stderr
    assert "conversation c2" in result.stderr


def test_one_corrupted_row_quarantines_its_conversation_only(
    sqlite_store: tuple[str, Path],
) -> None:
    """Issue 17, class 4: one unreadable record used to break every reader of the global log
    (SMS routing, handoff expiry, the live-log follower). Now its conversation is quarantined
    and answers its own error; the others, and the readers, carry on."""
    from datetime import UTC, datetime, timedelta

    from threadline.handoff.service import HandoffService
    from threadline.handoff.signing import Signer
    from threadline.ledger.events import HandoffOffered

    url, path = sqlite_store
    with open_ledger(url) as store:
        store.append(
            "c2", NewEvent("HandoffOffered", HandoffOffered(handoff_id="h1", channel="webrtc"))
        )
    _edit_sqlite(path, 2, _garbage)
    with open_ledger(url) as store:
        seen = store.read_all(after=0, limit=500)
        # c1's events before the damage were delivered; from the damaged one on, withheld.
        assert [(e.conversation_id, e.position) for e in seen if e.conversation_id == "c1"] == [
            ("c1", 1)
        ]
        assert [e.position for e in seen if e.conversation_id == "c2"] == [1, 2, 3]
        assert set(store.quarantined()) == {"c1"}
        with pytest.raises(IntegrityViolationError) as info:
            store.read("c1")
        assert info.value.position == 2
        assert [e.type for e in store.read("c2")][-1] == "HandoffOffered"
        service = HandoffService(store, signer=Signer(b"s" * 32, "handoff"))
        later = datetime.now(UTC) + timedelta(hours=1)
        assert service.expire_stale(later) == [("c2", "h1")]
        report = audit.survey_all(store)
        assert [b.conversation_id for b in report.broken] == ["c1"]
