"""Group commit: concurrent appends share one transaction, and so one fsync.

With fsync on, a commit costs milliseconds however small it is, and on PostgreSQL writers
are serialised by the table lock that keeps the global log gap-free; so one-transaction-
per-append caps throughput at about 1 / commit latency, whatever the number of threads.
One committer thread takes whatever inserts are waiting, inserts them in one call, and
hands each caller its sequences. A lone appender is not delayed (no timer: the committer
only batches what is already queued). If the combined insert hits a unique-key collision,
each insert of the group is retried on its own so that only the colliding one fails.

Two kinds of callers share the groups: threads (`insert`, each woken by its own lock) and
event-loop coroutines (`submit`, an asyncio future). The futures of one group that belong to
one event loop are resolved by ONE `loop.call_soon_threadsafe` after the group's commit:
waking each appender's thread in turn (and the GIL hand-over each wake costs) was ~390 µs of
CPU per HTTP append (docs/performance.md).

A submitted insert may name the one it was sealed after (`after`: the previous event of the
same conversation, not yet committed): it is committed only if that one was. Queued after
it (one queue, one committer), it is in the same group or a later one; when the group's
combined insert fails and each insert is retried on its own, or when `after` failed in an
earlier group, it fails with `PredecessorFailedError` instead of leaving a hole in the chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eventsourcing.persistence import IntegrityError, StoredEvent

from threadline.ledger.errors import LedgerError
from threadline.ledger.recorders import EventIdRecord, LedgerRecorder

log = logging.getLogger(__name__)

MAX_GROUP_EVENTS = 1000


def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


class PredecessorFailedError(IntegrityError, LedgerError):
    """The insert this one was sealed after was not committed, so neither is this one."""


@dataclass(eq=False)
class Ticket:
    """One insert in the committer's queue; `future` (for `submit`) answers it."""

    stored: Sequence[StoredEvent]
    ids: Sequence[EventIdRecord]
    # Released by the committer when the request is finished. A held Lock rather than an
    # Event: an Event is a Condition, a Lock and a deque, and building one per append was
    # ~3% of the server's CPU under HTTP append load (benchmarks.http, py-spy --gil).
    # None for a request made with `submit`, which is answered through `future`.
    done: threading.Lock | None = field(default_factory=_held_lock)
    sequences: list[int] = field(default_factory=list)
    error: BaseException | None = None
    future: asyncio.Future[list[int]] | None = None
    # Committed only if this one was; dropped once this one is committed (no long chains).
    after: Ticket | None = None
    # Called on the event loop with this ticket once answered, before `future` is set, and
    # even if `future` was cancelled meanwhile: for bookkeeping that must follow the insert.
    on_answer: Callable[[Ticket], None] | None = None


class GroupCommitter:
    def __init__(self, recorder: LedgerRecorder, max_events: int = MAX_GROUP_EVENTS) -> None:
        self._recorder = recorder
        self._max_events = max_events
        self._queue: queue.SimpleQueue[Ticket | list[Ticket] | None] = queue.SimpleQueue()
        # Tickets submitted on each event loop in its current iteration, queued together
        # when it ends (`_flush`): one queue hand-off per iteration, and groups as large as
        # what the loop sealed meanwhile. Queued one by one, the committer (idle or just
        # done) took each first ticket alone: groups of 2-5, an fsync each.
        self._pending: dict[asyncio.AbstractEventLoop, list[Ticket]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def insert(self, stored: Sequence[StoredEvent], ids: Sequence[EventIdRecord]) -> list[int]:
        request = Ticket(stored, ids)
        self._enqueue(request)
        assert request.done is not None
        request.done.acquire()
        if request.error is not None:
            raise request.error
        return request.sequences

    def submit(
        self,
        stored: Sequence[StoredEvent],
        ids: Sequence[EventIdRecord],
        after: Ticket | None = None,
        on_answer: Callable[[Ticket], None] | None = None,
    ) -> Ticket:
        """`insert` without blocking, from a coroutine: its `future` gets the inserted
        events' sequences (or the insert's error), resolved on this event loop once the group
        holding them is committed or failed. Cancelling the future only stops the waiting:
        the insert goes on, and `on_answer(ticket)` is called on the loop when it is answered.
        `after`: an earlier submitted insert that this one must not be committed without."""
        loop = asyncio.get_running_loop()
        if self._closed:
            raise RuntimeError("the ledger is closed")
        future: asyncio.Future[list[int]] = loop.create_future()
        ticket = Ticket(stored, ids, done=None, future=future, after=after, on_answer=on_answer)
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._flush, loop)
        pending.append(ticket)
        return ticket

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the loop, once per iteration with tickets: queues them, in submit order."""
        tickets = self._pending.pop(loop, [])
        if not tickets:
            return
        try:
            self._enqueue(tickets)
        except RuntimeError as exc:  # closed meanwhile: nobody will commit them
            for ticket in tickets:
                ticket.error = exc
            _resolve(tickets)

    def _enqueue(self, request: Ticket | list[Ticket]) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the ledger is closed")
            if self._thread is None:  # started on first use: no thread at import or open
                self._thread = threading.Thread(
                    target=self._run, name="ledger-group-commit", daemon=True
                )
                self._thread.start()
            self._queue.put(request)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            self._queue.put(None)
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            group = first if isinstance(first, list) else [first]
            count = sum(len(r.stored) for r in group)
            while count < self._max_events:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                more = nxt if isinstance(nxt, list) else [nxt]
                group.extend(more)
                count += sum(len(r.stored) for r in more)
            self._commit(group)
            self._answer(group)

    def _commit(self, group: list[Ticket]) -> None:
        """Fills in each request's sequences or error; answers nobody."""
        orphans = [r for r in group if r.after is not None and r.after.error is not None]
        if orphans:  # their predecessor failed in an earlier group
            for request in orphans:
                request.error = PredecessorFailedError("the event sealed before this one failed")
            group = [r for r in group if r.error is None]
            if not group:
                return
        if len(group) > 1:
            try:
                sequences = self._recorder.insert_events(
                    [s for r in group for s in r.stored],
                    event_ids=[i for r in group for i in r.ids],
                )
            except IntegrityError:
                for request in group:  # find the colliding insert(s); the others commit
                    self._commit([request])  # in queue order: `after` is settled first
                return
            except BaseException as exc:
                for request in group:
                    request.error = exc
                return
            offset = 0
            for request in group:
                n = len(request.stored)
                request.sequences = list((sequences or [])[offset : offset + n])
                offset += n
            return
        (request,) = group
        try:
            single = self._recorder.insert_events(request.stored, event_ids=request.ids)
        except BaseException as exc:
            request.error = exc
        else:
            request.sequences = list(single or [])

    @staticmethod
    def _answer(group: list[Ticket]) -> None:
        """Wakes each waiting thread, and each event loop once for all its futures."""
        by_loop: dict[asyncio.AbstractEventLoop, list[Ticket]] = {}
        for request in group:
            request.after = None
            if request.future is not None:
                by_loop.setdefault(request.future.get_loop(), []).append(request)
            else:
                assert request.done is not None
                request.done.release()
        for loop, requests in by_loop.items():
            # A closed loop has nobody left to answer (its coroutines are gone).
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, requests)


def _resolve(requests: list[Ticket]) -> None:
    """On the event loop: every future of one group, in the group's order."""
    for request in requests:
        if request.on_answer is not None:
            try:
                request.on_answer(request)
            except Exception:
                log.exception("group commit: answering an insert failed")
        future = request.future
        assert future is not None
        if future.done():  # cancelled: nobody waits, the insert is answered all the same
            continue
        if request.error is not None:
            future.set_exception(request.error)
        else:
            future.set_result(request.sequences)
