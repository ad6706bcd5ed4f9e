"""Appends on the event loop (`Ledger.append_on_loop`) and the group committer that answers
them (`GroupCommitter.submit`): a group's futures resolved together, in order, with one wake
of the loop; an error fails the whole group; a collision fails alone and takes down what was
sealed on top of it; and the ledger's guarantees (order, hash chain, repeats, 409, nothing
appended on a rejection) hold when the loop and worker threads append together."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

from tests.support.ledgers import message, started
from threadline.ledger import audit
from threadline.ledger.envelope import AppendResult, NewEvent
from threadline.ledger.errors import ConcurrencyConflictError, InvalidEventError
from threadline.ledger.groupcommit import GroupCommitter, PredecessorFailedError, Ticket
from threadline.ledger.keyring import MemoryKeyTable
from threadline.ledger.masterkey import MasterKey
from threadline.ledger.recorders import EventIdRecord, LedgerRecorder, POPOLedgerRecorder
from threadline.ledger.shredding import ShreddingCodec
from threadline.ledger.store import Ledger


class GatedRecorder(POPOLedgerRecorder):
    """Holds each insert until `gate` is set (cleared again by the test as needed)."""

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
        assert self.gate.wait(10)
        return super().insert_events(stored_events, **kwargs)


def _event(
    conversation: str, position: int, n: int
) -> tuple[list[StoredEvent], list[EventIdRecord]]:
    stored = [StoredEvent(conversation, position, "T", b"{}")]
    return stored, [EventIdRecord(f"id-{n}", conversation, position, "d")]


def _run(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(main())


class Wakes:
    """Counts `call_soon_threadsafe` on a loop (the committer's wake-ups)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.count = 0
        original = loop.call_soon_threadsafe

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(*args, **kwargs)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign,assignment]


async def _settle(tickets: Sequence[Ticket]) -> list[list[int] | BaseException]:
    futures = [t.future for t in tickets]
    assert all(f is not None for f in futures)
    return list(await asyncio.gather(*futures, return_exceptions=True))  # type: ignore[arg-type]


def _record(order: list[int], n: int, _future: object) -> None:
    order.append(n)


def _until(condition: Callable[[], bool]) -> None:
    for _ in range(2000):
        if condition():
            return
        threading.Event().wait(0.005)
    raise AssertionError("timed out")


def _queued(committer: GroupCommitter, n: int) -> None:
    """Until `n` items wait in the committer's queue (the tickets one loop iteration
    submitted are one item)."""
    _until(lambda: committer._queue.qsize() >= n)


# -- the committer ---------------------------------------------------------------------------


def test_a_group_of_futures_is_resolved_in_order_with_one_wake() -> None:
    recorder = GatedRecorder()
    committer = GroupCommitter(recorder)

    async def main() -> None:
        order: list[int] = []
        first = committer.submit(*_event("a", 1, 0))
        await asyncio.to_thread(recorder.entered.wait, 10)  # the committer holds insert 0
        rest = [committer.submit(*_event(c, 1, n)) for n, c in enumerate("bcd", start=1)]
        for n, t in enumerate([first, *rest]):
            assert t.future is not None
            t.future.add_done_callback(functools.partial(_record, order, n))
        await asyncio.to_thread(_queued, committer, 1)  # the three, queued together
        wakes = Wakes(asyncio.get_running_loop())  # from here on, only the committer's
        recorder.gate.set()
        assert await _settle([first, *rest]) == [[1], [2], [3], [4]]
        await asyncio.sleep(0)  # the done callbacks
        assert order == [0, 1, 2, 3]
        assert recorder.calls == [1, 3]  # the three queued inserts went in one call …
        assert wakes.count == 2  # … answered by one wake of the loop (plus the first's)

    _run(main)
    committer.close()


def test_what_one_loop_iteration_submits_is_one_group_even_for_an_idle_committer() -> None:
    recorder = GatedRecorder()
    recorder.gate.set()
    committer = GroupCommitter(recorder)

    async def main() -> None:
        tickets = [committer.submit(*_event(c, 1, n)) for n, c in enumerate("abcde")]
        assert await _settle(tickets) == [[1], [2], [3], [4], [5]]
        assert recorder.calls == [5]

    _run(main)
    committer.close()


def test_tickets_not_yet_queued_when_the_committer_closes_fail_and_are_answered() -> None:
    committer = GroupCommitter(POPOLedgerRecorder())
    answered: list[Ticket] = []

    async def main() -> None:
        ticket = committer.submit(*_event("a", 1, 0), on_answer=answered.append)
        committer.close()
        (result,) = await _settle([ticket])
        assert isinstance(result, RuntimeError)
        assert answered == [ticket]
        with pytest.raises(RuntimeError, match="closed"):
            committer.submit(*_event("a", 1, 1))

    _run(main)


def test_an_error_fails_every_future_of_the_group() -> None:
    recorder = GatedRecorder()
    committer = GroupCommitter(recorder)

    async def main() -> None:
        first = committer.submit(*_event("a", 1, 0))
        await asyncio.to_thread(recorder.entered.wait, 10)
        group = [committer.submit(*_event(c, 1, n)) for n, c in enumerate("bcd", start=1)]
        await asyncio.to_thread(_queued, committer, 1)
        # Fail the group's combined insert, not the first (lone) one.
        original = recorder.insert_events

        def failing(stored: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
            if len(stored) > 1:
                raise OperationalError("disk I/O error")
            return original(stored, **kwargs)

        recorder.insert_events = failing  # type: ignore[method-assign,assignment]
        recorder.gate.set()
        results = await _settle([first, *group])
        assert results[0] == [1]
        assert all(isinstance(r, OperationalError) for r in results[1:])
        assert recorder.max_notification_id() == 1  # nothing of the group was stored

    _run(main)
    committer.close()


def test_a_collision_fails_alone_and_takes_what_was_sealed_after_it() -> None:
    recorder = GatedRecorder()
    recorder.gate.set()
    committer = GroupCommitter(recorder)
    assert committer.insert(*_event("a", 1, 0)) == [1]
    recorder.gate.clear()

    async def main() -> None:
        blocker = committer.submit(*_event("z", 1, 1))
        await asyncio.to_thread(recorder.entered.wait, 10)
        collides = committer.submit(*_event("a", 1, 2))  # position 1 of "a" is taken
        fine = committer.submit(*_event("b", 1, 3))
        on_top = committer.submit(*_event("a", 2, 4), after=collides)
        also_fine = committer.submit(*_event("c", 1, 5))
        await asyncio.to_thread(_queued, committer, 1)
        recorder.gate.set()
        results = await _settle([blocker, collides, fine, on_top, also_fine])
        assert results[0] == [2]
        assert isinstance(results[1], IntegrityError)
        assert isinstance(results[3], PredecessorFailedError)  # no hole at "a" 2
        assert sorted([results[2], results[4]]) == [[3], [4]]  # type: ignore[type-var]
        # One whose predecessor failed in an earlier group fails without an insert.
        late = committer.submit(*_event("a", 3, 6), after=on_top)
        calls = len(recorder.calls)
        assert isinstance((await _settle([late]))[0], PredecessorFailedError)
        assert len(recorder.calls) == calls
        assert [r.originator_version for r in recorder.select_conversation("a")] == [1]

    _run(main)
    committer.close()


def test_threads_and_futures_share_a_group() -> None:
    recorder = GatedRecorder()
    committer = GroupCommitter(recorder)
    threaded: list[list[int]] = []

    async def main() -> None:
        first = committer.submit(*_event("a", 1, 0))
        await asyncio.to_thread(recorder.entered.wait, 10)
        thread = threading.Thread(
            target=lambda: threaded.append(committer.insert(*_event("b", 1, 1)))
        )
        thread.start()
        await asyncio.to_thread(_queued, committer, 1)
        second = committer.submit(*_event("c", 1, 2))
        await asyncio.to_thread(_queued, committer, 2)
        recorder.gate.set()
        assert await _settle([first, second]) == [[1], [3]]
        await asyncio.to_thread(thread.join, 10)
        assert threaded == [[2]]
        assert recorder.calls == [1, 2]

    _run(main)
    committer.close()


# -- the ledger --------------------------------------------------------------------------------


async def append_like_the_route(
    ledger: Ledger, conversation_id: str, event: NewEvent, expected: int | None = None
) -> tuple[AppendResult, bool]:
    """As the HTTP append does: on the loop, else the same call in a worker thread.
    Returns the result and whether the loop did it."""
    result = await ledger.append_on_loop(conversation_id, event, expected)
    if result is not None:
        return result, True
    return await asyncio.to_thread(ledger.append, conversation_id, event, expected), False


def _ledger(recorder: LedgerRecorder | None = None, **kw: Any) -> Ledger:
    return Ledger(recorder or POPOLedgerRecorder(), group_commit=True, **kw)


def test_concurrent_appends_keep_order_and_the_hash_chain() -> None:
    ledger = _ledger()
    cids = ["hot", "c1", "c2", "c3"]
    for c in cids:
        ledger.append(c, started())

    async def main() -> list[tuple[str, AppendResult, bool]]:
        async def one(n: int) -> tuple[str, AppendResult, bool]:
            c = "hot" if n % 2 else cids[1 + (n // 2) % 3]
            result, on_loop = await append_like_the_route(ledger, c, message(f"m{n}"))
            return c, result, on_loop

        def in_thread(n: int) -> tuple[str, AppendResult, bool]:
            return "hot", ledger.append("hot", message(f"t{n}")), False

        loop_tasks = [one(n) for n in range(120)]
        thread_tasks = [asyncio.to_thread(in_thread, n) for n in range(10)]
        return list(await asyncio.gather(*loop_tasks, *thread_tasks))

    outcomes = _run(main)
    assert sum(on_loop for _, _, on_loop in outcomes) >= 100  # the loop did most of them
    for c in cids:
        assert audit.verify_conversation(ledger, c) == len(ledger.read(c))
        events = ledger.read(c)
        assert [e.position for e in events] == list(range(1, len(events) + 1))
        by_id = {e.event_id: e for e in events}
        for cid, result, _ in outcomes:
            if cid == c:
                assert by_id[result.event_id].position == result.position
                assert by_id[result.event_id].sequence == result.sequence
    assert len(ledger.read("hot")) == 1 + 60 + 10
    assert ledger._tails == {}  # every tail answered and released
    ledger.close()


def test_a_repeat_answers_the_original_and_appends_nothing() -> None:
    ledger = _ledger()
    ledger.append("c", started())
    first = message("once")

    async def main() -> None:
        original, on_loop = await append_like_the_route(ledger, "c", first)
        assert on_loop
        assert original.position == 2
        assert await ledger.append_on_loop("c", first) is None  # the insert collided
        again, _ = await append_like_the_route(ledger, "c", first)
        assert again == AppendResult("c", first.event_id, 2, original.sequence, True)

    _run(main)
    assert len(ledger.read("c")) == 2
    ledger.close()


def test_a_stale_expected_version_is_a_conflict_and_appends_nothing() -> None:
    ledger = _ledger()
    ledger.append("c", started())
    ledger.append("c", message())

    async def main() -> None:
        assert await ledger.append_on_loop("c", message(), expected_version=1) is None
        with pytest.raises(ConcurrencyConflictError):
            await append_like_the_route(ledger, "c", message(), 1)
        result, on_loop = await append_like_the_route(ledger, "c", message(), 2)
        assert on_loop
        assert result.position == 3

    _run(main)
    assert len(ledger.read("c")) == 3
    ledger.close()


def test_invalid_input_raises_and_appends_nothing() -> None:
    ledger = _ledger()
    ledger.append("c", started())

    async def main() -> None:
        with pytest.raises(InvalidEventError):
            await ledger.append_on_loop("c", NewEvent("MessagePosted", {"role": "nobody"}))
        with pytest.raises(InvalidEventError):
            await ledger.append_on_loop("c", message(), expected_version=-1)
        with pytest.raises(InvalidEventError):
            await ledger.append_on_loop("bad id!", message())
        # A second ConversationStarted is left to `append`, which rejects it.
        assert await ledger.append_on_loop("c", started()) is None

    _run(main)
    assert len(ledger.read("c")) == 1
    assert ledger._serial._locks == {}
    ledger.close()


def test_what_was_sealed_on_a_repeat_is_appended_after_the_original() -> None:
    ledger = _ledger()
    ledger.append("c", started())
    first = message("first")
    ledger.append("c", first)

    async def main() -> None:
        # The repeat takes the conversation and collides; the new event, sealed on top of
        # it at position 4, must not be committed there: it fails too and goes again.
        (repeat, repeat_on_loop), (new, _) = await asyncio.gather(
            append_like_the_route(ledger, "c", first),
            append_like_the_route(ledger, "c", message("second")),
        )
        assert not repeat_on_loop
        assert repeat.duplicate
        assert repeat.position == 2
        assert new.position == 3

    _run(main)
    assert audit.verify_conversation(ledger, "c") == 3
    ledger.close()


def test_a_cancelled_append_is_still_committed_and_lets_the_conversation_go() -> None:
    recorder = GatedRecorder()
    recorder.gate.set()
    ledger = _ledger(recorder)
    ledger.append("c", started())
    recorder.gate.clear()
    recorder.entered.clear()
    event = message("cancelled")

    async def main() -> None:
        task = asyncio.create_task(ledger.append_on_loop("c", event))
        await asyncio.to_thread(recorder.entered.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        recorder.gate.set()
        result, _ = await append_like_the_route(ledger, "c", message("next"))
        assert result.position == 3

    _run(main)
    assert [e.event_id for e in ledger.read("c")][1] == event.event_id
    assert audit.verify_conversation(ledger, "c") == 3
    ledger.close()


def test_a_waiting_thread_stops_the_tail_and_goes_first() -> None:
    recorder = GatedRecorder()
    recorder.gate.set()
    ledger = _ledger(recorder)
    ledger.append("c", started())
    recorder.gate.clear()
    recorder.entered.clear()

    async def main() -> list[int]:
        first = asyncio.create_task(ledger.append_on_loop("c", message("loop 1")))
        await asyncio.to_thread(recorder.entered.wait, 10)
        thread = asyncio.create_task(asyncio.to_thread(ledger.append, "c", message("thread")))
        await asyncio.to_thread(_until, lambda: ledger._serial.waiting("c"))
        second = asyncio.create_task(append_like_the_route(ledger, "c", message("loop 2")))
        await asyncio.sleep(0.05)
        recorder.gate.set()
        one = await first
        assert one is not None
        two, on_loop = await second
        assert on_loop
        return [one.position, (await thread).position, two.position]

    assert _run(main) == [2, 3, 4]
    assert audit.verify_conversation(ledger, "c") == 4
    ledger.close()


def test_a_conversation_without_a_cached_head_or_key_is_left_to_append() -> None:
    table = MemoryKeyTable()
    codec = ShreddingCodec(table, MasterKey(b"m" * 32, "test"))
    ledger = _ledger(codec=codec)
    ledger.append("c", started())  # no personal field: no key yet
    fresh = _ledger(recorder=ledger.recorder, codec=codec)  # shares the store, no head cache

    async def main() -> None:
        assert await fresh.append_on_loop("c", message()) is None  # head not cached
        assert await ledger.append_on_loop("c", message()) is None  # would create a key
        assert table.active_key("c") is None
        result, on_loop = await append_like_the_route(ledger, "c", message("key made"))
        assert not on_loop
        assert table.active_key("c") is not None
        result, on_loop = await append_like_the_route(ledger, "c", message("on the loop"))
        assert on_loop
        assert result.position == 3

    _run(main)
    assert [e.data.text for e in ledger.read("c")[1:]] == ["key made", "on the loop"]  # type: ignore[attr-defined]
    ledger.close()


def test_without_group_commit_everything_is_left_to_append() -> None:
    ledger = Ledger(POPOLedgerRecorder())
    ledger.append("c", started())
    assert asyncio.run(ledger.append_on_loop("c", message())) is None
    assert len(ledger.read("c")) == 1
    ledger.close()


def test_listeners_hear_loop_appends_in_order() -> None:
    ledger = _ledger()
    heard: list[int] = []
    ledger.subscribe(lambda events: heard.extend(e.position for e in events))
    ledger.append("c", started())

    async def main() -> None:
        await asyncio.gather(
            *(append_like_the_route(ledger, "c", message(f"{n}")) for n in range(20))
        )

    _run(main)
    assert heard == list(range(1, 22))
    ledger.close()


def test_the_erasure_mark_is_looked_at_in_a_worker_thread_while_appends_go_on() -> None:
    table = MemoryKeyTable()
    now = [0.0]
    codec = ShreddingCodec(table, MasterKey(b"m" * 32, "test"), clock=lambda: now[0])
    ledger = _ledger(codec=codec)
    ledger.append("c", started())
    ledger.append("c", message("makes the key"))  # and the first look at the mark
    key = table.active_key("c")
    assert key is not None
    assert table.destroy(key.key_id, datetime.now(UTC))  # as another process would
    now[0] += 1.0  # the mark is due for a look

    async def main() -> None:
        # Claims the look, run in a worker thread, and goes on (with the cached key, unless
        # that thread was quicker), as an append in a thread does while another one looks.
        await ledger.append_on_loop("c", message())
        await asyncio.to_thread(_until, lambda: codec._mark == table.erasure_mark())
        assert codec._writers.get("c", now[0]) is None
        assert await ledger.append_on_loop("c", message()) is None  # key dropped: to `append`

    _run(main)
    ledger.close()
