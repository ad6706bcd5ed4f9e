"""Group commit: waiting inserts share one recorder call; a collision inside a group fails
only the colliding insert."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from tests.support.ledgers import message, started
from threadline.ledger.envelope import AppendResult
from threadline.ledger.errors import ConcurrencyConflictError
from threadline.ledger.groupcommit import GroupCommitter
from threadline.ledger.recorders import EventIdRecord, POPOLedgerRecorder
from threadline.ledger.store import Ledger


class GatedRecorder(POPOLedgerRecorder):
    """Holds the first insert until released, so that others queue up behind it."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.calls: list[int] = []

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self.calls.append(len(stored_events))
        self.entered.set()
        self.gate.wait(10)
        return super().insert_events(stored_events, **kwargs)


def _event(
    conversation: str, position: int, n: int
) -> tuple[list[StoredEvent], list[EventIdRecord]]:
    stored = [StoredEvent(conversation, position, "T", b"{}")]
    return stored, [EventIdRecord(f"id-{n}", conversation, position, "d")]


def test_waiting_inserts_share_one_call_and_collisions_fail_alone() -> None:
    recorder = GatedRecorder()
    committer = GroupCommitter(recorder)
    results: dict[int, list[int] | BaseException] = {}

    def insert(n: int, conversation: str, position: int) -> None:
        try:
            results[n] = committer.insert(*_event(conversation, position, n))
        except BaseException as exc:
            results[n] = exc

    first = threading.Thread(target=insert, args=(0, "a", 1))
    first.start()
    assert recorder.entered.wait(10)  # the committer is inside the first insert
    others = [
        threading.Thread(target=insert, args=(1, "b", 1)),
        threading.Thread(target=insert, args=(2, "c", 1)),
        threading.Thread(target=insert, args=(3, "a", 1)),  # collides with insert 0
    ]
    for t in others:
        t.start()
    while committer._queue.qsize() < 3:
        threading.Event().wait(0.01)
    recorder.gate.set()
    for t in [first, *others]:
        t.join(10)
    committer.close()
    assert recorder.calls[:2] == [1, 3]  # the three waiting inserts went in one call …
    assert isinstance(results[3], IntegrityError)  # … which collided, so each went alone
    assert results[0] == [1]
    assert sorted([results[1], results[2]]) == [[2], [3]]  # type: ignore[type-var]
    assert recorder.max_notification_id() == 3


def test_ledger_with_group_commit_reports_conflicts_per_append() -> None:
    recorder = GatedRecorder()
    recorder.gate.set()
    ledger = Ledger(recorder, group_commit=True)
    ledger.append("c1", started())
    barrier = threading.Barrier(4)
    outcomes: list[AppendResult | Exception] = []

    def racer() -> None:
        barrier.wait(10)
        try:
            outcomes.append(ledger.append("c1", message(), expected_version=1))
        except ConcurrencyConflictError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=racer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    ledger.close()
    assert sum(isinstance(o, AppendResult) for o in outcomes) == 1
    assert sum(isinstance(o, ConcurrencyConflictError) for o in outcomes) == 3
    with pytest.raises(RuntimeError, match="closed"):
        GroupCommitter.insert(ledger._committer, *_event("x", 1, 9))  # type: ignore[arg-type]
