"""Agent-context snapshots (issue 19): a read folded from a snapshot equals the fold from
position 1 — at every position, as the conversation grows, after the store changes under it
and after an erasure."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.event_strategies import conversation
from threadline.ledger.envelope import NewEvent
from threadline.ledger.erasure import erase_subject
from threadline.ledger.shredding import MARK_INTERVAL_S
from threadline.ledger.store import Ledger, open_ledger
from threadline.projections.context import build_context
from threadline.projections.snapshots import ContextSnapshots

CID = "snap-1"


def new_events(steps: list[tuple[str, str | None, dict[str, Any]]]) -> list[NewEvent]:
    # Unknown types cannot be appended through the ledger (the strategy's "FromTheFuture").
    return [NewEvent(t, d, leg_id=leg) for t, leg, d in steps if t != "FromTheFuture"]


def full(ledger: Ledger, upto: int | None = None) -> Any:
    events = ledger.read(CID, upto=upto)
    return build_context(events) if events else None


# One operation: append the next k steps, or read at the head (None) or at a position.
op = st.one_of(
    st.tuples(st.just("append"), st.integers(1, 12)),
    st.tuples(st.just("read"), st.none() | st.integers(0, 45)),
)


@settings(max_examples=60, deadline=None)
@given(steps=conversation, ops=st.lists(op, max_size=25), interval=st.integers(1, 6))
def test_snapshot_reads_equal_the_fold_from_position_1(
    steps: list[Any], ops: list[tuple[str, int | None]], interval: int
) -> None:
    with open_ledger("memory://") as ledger:
        snapshots = ContextSnapshots(ledger, interval=interval, max_per_conversation=4)
        pending = [NewEvent("ConversationStarted", {"channel": "chat"}), *new_events(steps)]
        for kind, arg in [*ops, ("read", None)]:
            if kind == "append":
                assert arg is not None
                chunk, pending = pending[:arg], pending[arg:]
                if chunk:
                    ledger.append_batch(CID, chunk)
                continue
            assert snapshots.context(CID, upto=arg) == full(ledger, arg)
            # Every position, from whatever snapshots are held now.
            for q in range(ledger.version(CID) + 1):
                assert snapshots.context(CID, upto=q) == full(ledger, q)


def chat(n: int) -> list[NewEvent]:
    out = [
        NewEvent("ConversationStarted", {"channel": "chat"}),
        NewEvent("LegOpened", {"channel": "chat"}, leg_id="c"),
    ]
    for i in range(n - 2):
        role = "visitor" if i % 2 else "agent"
        out.append(NewEvent("MessagePosted", {"role": role, "text": f"turn {i}"}, leg_id="c"))
    return out


def test_head_reads_keep_checkpoints_and_point_in_time_reads_keep_nothing() -> None:
    with open_ledger("memory://") as ledger:
        ledger.append_batch(CID, chat(25))
        snapshots = ContextSnapshots(ledger, interval=10)
        assert snapshots.context(CID, upto=20) == full(ledger, 20)
        assert snapshots.positions(CID) == []  # below the head: an erasure may follow
        assert snapshots.context(CID) == full(ledger)
        assert snapshots.positions(CID) == [10, 20, 25]
        ledger.append_batch(CID, [NewEvent("MessagePosted", {"role": "agent", "text": "more"})])
        before = snapshots.hits
        assert snapshots.context(CID) == full(ledger)
        assert snapshots.hits == before + 1
        assert snapshots.positions(CID) == [10, 20, 26]  # the head snapshot moved on
        assert snapshots.context(CID, upto=15) == full(ledger, 15)
        assert snapshots.hits == before + 2
        assert snapshots.context("no-such-conversation") is None


def test_a_snapshot_whose_chain_hash_no_longer_matches_is_not_used(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with open_ledger(url) as ledger:
        ledger.append_batch(CID, chat(12))
        snapshots = ContextSnapshots(ledger, interval=5)
        snapshots.context(CID)
        assert snapshots.positions(CID) == [5, 10, 12]
        # The store changes under the process (a restore of another backup, a rewrite by
        # another process): the conversation now holds another history of the same length.
        with sqlite3.connect(tmp_path / "ledger.db") as db:
            tables = [
                name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for table in tables:
                columns = [c[1] for c in db.execute(f"PRAGMA table_info({table})")]
                for column in ("originator_id", "conversation_id"):
                    if column in columns and "key" not in table:
                        db.execute(f"DELETE FROM {table} WHERE {column} = ?", (CID,))
        with open_ledger(url) as other:
            rewritten = chat(12)
            rewritten[5] = NewEvent("MessagePosted", {"role": "agent", "text": "rewritten"})
            other.append_batch(CID, rewritten)
        misses = snapshots.misses
        got = snapshots.context(CID)
        assert got == full(ledger)
        assert snapshots.misses == misses + 1
        assert got is not None
        assert "rewritten" in [t.text for t in got.recent_turns]
        assert snapshots.positions(CID) == [5, 10, 12]  # made afresh from the new history
        assert snapshots.context(CID, upto=7) == full(ledger, 7)


def test_a_changed_erasure_mark_drops_every_snapshot() -> None:
    mark = ["m0"]
    with open_ledger("memory://") as ledger:
        ledger.append_batch(CID, chat(8))
        snapshots = ContextSnapshots(ledger, interval=4, erasure_mark=lambda: mark[0])
        snapshots.context(CID)
        assert snapshots.positions(CID) == [4, 8]
        mark[0] = "m1"
        misses = snapshots.misses
        assert snapshots.context(CID) == full(ledger)
        assert snapshots.misses == misses + 1


@pytest.fixture
def private_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    monkeypatch.setenv("THREADLINE_PRIVACY", "on")
    with open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as store:
        yield store


def test_no_plaintext_of_an_erased_subject_survives_in_a_snapshot(private_ledger: Ledger) -> None:
    ledger = private_ledger
    secret = "my card ends 4242 and I live at 12 Elm Street"
    ledger.append_batch(
        CID,
        [
            NewEvent("ConversationStarted", {"channel": "chat", "visitor_ref": "jane@example.com"}),
            NewEvent("LegOpened", {"channel": "chat"}, leg_id="c"),
            NewEvent("MessagePosted", {"role": "visitor", "text": secret}, leg_id="c"),
            NewEvent("MessagePosted", {"role": "agent", "text": "thanks"}, leg_id="c"),
        ],
    )
    snapshots = ContextSnapshots(ledger, interval=2)
    before = snapshots.context(CID)
    assert before is not None
    assert secret in before.model_dump_json()
    assert snapshots.positions(CID) == [2, 4]
    erase_subject(ledger, "jane@example.com")
    for upto in (None, 2, 3, 4, 5):
        got = snapshots.context(CID, upto=upto)
        assert got == full(ledger, upto)
        assert got is not None
        assert secret not in got.model_dump_json()
    # An erased conversation is folded from position 1 from now on: nothing is kept.
    assert snapshots.positions(CID) == []


def test_erasure_by_another_process_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another `Ledger` on the same database (another process) erases: this process's
    snapshots were made before, its codec still caches the key; the erasure mark drops them."""
    monkeypatch.setenv("THREADLINE_PRIVACY", "on")
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    secret = "call me on 07700 900123 tonight"
    with open_ledger(url) as mine, open_ledger(url) as other:
        mine.append_batch(
            CID,
            [
                NewEvent(
                    "ConversationStarted", {"channel": "sms", "visitor_ref": "tel:+447700900123"}
                ),
                NewEvent("MessagePosted", {"role": "visitor", "text": secret}),
            ],
        )
        snapshots = ContextSnapshots(mine, interval=1)
        assert secret in snapshots.context(CID).model_dump_json()  # type: ignore[union-attr]
        erase_subject(other, "tel:+447700900123")
        time.sleep(MARK_INTERVAL_S + 0.05)  # how long this process's codec may still decrypt
        for upto in (None, 2):
            got = snapshots.context(CID, upto=upto)
            assert got == full(mine, upto)
            assert got is not None
            assert secret not in got.model_dump_json()


def test_snapshots_are_bounded_least_recently_read_first() -> None:
    with open_ledger("memory://") as ledger:
        for cid in ("a-1", "b-1", "c-1"):
            ledger.append_batch(cid, chat(9))
        snapshots = ContextSnapshots(ledger, interval=4, max_snapshots=5)
        snapshots.context("a-1")  # 4, 8, 9
        snapshots.context("b-1")  # 4, 8, 9: a-1 goes
        assert snapshots.positions("a-1") == []
        assert snapshots.positions("b-1") == [4, 8, 9]
        snapshots.context("b-1", upto=5)  # a hit: b-1 is now the most recently read
        snapshots.context("c-1")
        assert snapshots.positions("b-1") == []
        assert snapshots.positions("c-1") == [4, 8, 9]
        none = ContextSnapshots(ledger, max_snapshots=0)
        assert none.context("a-1") == build_context(ledger.read("a-1"))
        assert none.positions("a-1") == []


def test_an_erasure_drops_the_snapshots_of_every_conversation_at_once(
    private_ledger: Ledger,
) -> None:
    """Conversation B holds the subject too: its snapshots go when the subject is erased,
    not at B's next read (which may never come)."""
    ledger = private_ledger
    secret = "my card ends 4242 and I live at 12 Elm Street"
    for cid in ("conv-a", "conv-b"):
        ledger.append_batch(
            cid,
            [
                NewEvent("ConversationStarted", {"channel": "chat", "visitor_ref": "jane@x.com"}),
                NewEvent("MessagePosted", {"role": "visitor", "text": secret}),
            ],
        )
    ledger.append_batch("conv-c", chat(2))
    snapshots = ContextSnapshots(ledger, interval=1)
    for cid in ("conv-a", "conv-b", "conv-c"):
        snapshots.context(cid)
    assert snapshots.positions("conv-b") == [1, 2]
    erase_subject(ledger, "jane@x.com")
    assert snapshots.positions("conv-a") == snapshots.positions("conv-b") == []
    assert snapshots.positions("conv-c") == []  # everything goes: erasures are rare


def test_a_changed_erasure_mark_drops_the_snapshots_of_conversations_not_read() -> None:
    """A key destroyed by another process: the next read of any conversation drops every
    snapshot, including those of conversations it does not read."""
    mark = ["m0"]
    with open_ledger("memory://") as ledger:
        ledger.append_batch(CID, chat(8))
        ledger.append_batch("other", chat(2))
        snapshots = ContextSnapshots(ledger, interval=4, erasure_mark=lambda: mark[0])
        snapshots.context(CID)
        assert snapshots.positions(CID) == [4, 8]
        mark[0] = "m1"
        assert snapshots.context("other") == build_context(ledger.read("other"))
        assert snapshots.positions(CID) == []
