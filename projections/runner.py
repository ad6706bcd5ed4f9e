"""Runners: keep a tracked read model up to date by pulling the global log.

eventsourcing's `ProjectionRunner` needs a recorder that can push (`subscribe`), which its
SQLite recorder cannot; a pull loop works on every backend with the same guarantees,
because the read model records its position in the transaction that updates it
(`TrackedView.commit`). An in-process ledger subscription only *wakes* the loop early.

Gaps. A global sequence number may be missing when the runner reads past it: its transaction
rolled back (the gap is permanent) or has not committed yet (it will appear, with a number
lower than events already applied). The runner records each missing number with the time
it was first missed, in the same transaction as the position. On every step it looks for
pending gaps again and applies any that appeared, exactly once (a filled gap is deleted in
the transaction that applies it). A gap still empty after `gap_timeout_s` is given up. The
ledger's PostgreSQL and SQLite backends issue numbers in commit order, so there a gap can
only be a rollback; the bookkeeping is what makes the runner correct without relying on it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from eventsourcing.persistence import IntegrityError

from threadline.ledger.envelope import RecordedEvent
from threadline.projections.views import Batch, TrackedView, TrackingState

log = logging.getLogger(__name__)


class GlobalLog(Protocol):
    """What a runner reads: `threadline.ledger.store.Ledger` satisfies it."""

    def read_all(self, after: int = 0, limit: int = 500) -> list[RecordedEvent]: ...

    def max_sequence(self) -> int: ...


class Runner:
    def __init__(
        self,
        source: GlobalLog,
        view: TrackedView,
        *,
        batch_size: int = 500,
        gap_timeout_s: float = 10.0,
        max_gaps: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be ≥ 1")
        self.source = source
        self.view = view
        self.batch_size = batch_size
        self.gap_timeout_s = gap_timeout_s
        self.max_gaps = max_gaps
        self.clock = clock

    def step(self) -> int:
        """Applies what is available (one batch plus any late gap fillers) in one transaction;
        returns how many events were applied (0: nothing new, or another runner won)."""
        state = self.view.tracking()
        now = self.clock()
        late, dropped = self._revisit_gaps(state, now)
        events = self.source.read_all(after=state.position, limit=self.batch_size)
        new_gaps = self._new_gaps(state, events, now)
        if not (late or events or dropped):
            return 0
        batch = Batch(
            events=[*late, *events],
            position=events[-1].sequence if events else None,
            filled=[e.sequence for e in late],
            new_gaps=new_gaps,
            dropped=dropped,
        )
        try:
            self.view.commit(batch)
        except IntegrityError as exc:
            log.info("projection %s: another runner got there first (%s)", self.view.name, exc)
            return 0
        if dropped:
            log.warning("projection %s: gave up waiting for sequences %s", self.view.name, dropped)
        return len(batch.events)

    def _revisit_gaps(
        self, state: TrackingState, now: float
    ) -> tuple[list[RecordedEvent], list[int]]:
        if not state.gaps:
            return [], []
        late: list[RecordedEvent] = []
        for first, last in _runs(sorted(state.gaps)):
            found = self.source.read_all(after=first - 1, limit=last - first + 1)
            late.extend(e for e in found if e.sequence in state.gaps)
        seen = {e.sequence for e in late}
        dropped = [
            s
            for s, t in sorted(state.gaps.items())
            if s not in seen and now - t > self.gap_timeout_s
        ]
        return late, dropped

    def _new_gaps(
        self, state: TrackingState, events: Sequence[RecordedEvent], now: float
    ) -> dict[int, float]:
        holes: list[range] = []
        expected = state.position + 1
        for e in events:
            if e.sequence > expected:
                holes.append(range(expected, e.sequence))
            expected = e.sequence + 1
        count = sum(len(h) for h in holes)
        room = max(0, self.max_gaps - len(state.gaps))
        if count > room:
            # A jump this large is not transactions in flight (e.g. a sequence cache lost in a
            # database crash): keep watching the highest numbers, give up on the rest.
            log.warning(
                "projection %s: %d sequences missing, tracking %d", self.view.name, count, room
            )
        gaps: dict[int, float] = {}
        for hole in reversed(holes):
            for s in reversed(hole):
                if len(gaps) >= room:
                    return gaps
                gaps[s] = now
        return gaps

    def catch_up(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Steps until nothing is left; `progress(position, target)` after each step."""
        total = 0
        target = self.source.max_sequence()
        while True:
            applied = self.step()
            total += applied
            if progress is not None:
                progress(self.view.tracking().position, target)
            if applied == 0:
                return total

    def lag(self) -> int:
        """How many sequence numbers the view is behind the log (gaps not counted)."""
        return max(0, self.source.max_sequence() - self.view.tracking().position)

    def run(
        self,
        stop: threading.Event,
        *,
        poll_interval_s: float = 0.5,
        wake: threading.Event | None = None,
    ) -> None:
        """Steps until `stop` is set; errors are logged and retried with backoff, because
        a read model that falls behind is better than one that dies."""
        wake = wake or threading.Event()
        delay = poll_interval_s
        while not stop.is_set():
            try:
                applied = self.step()
                delay = poll_interval_s
            except Exception:
                log.exception("projection %s: step failed; retrying", self.view.name)
                applied = 0
                delay = min(delay * 2, 30.0)
            if applied:
                continue
            wake.wait(delay)
            wake.clear()


def _runs(sequences: Sequence[int]) -> list[tuple[int, int]]:
    """Contiguous runs of sorted numbers: [3, 4, 5, 9] → [(3, 5), (9, 9)]."""
    runs: list[tuple[int, int]] = []
    for s in sequences:
        if runs and s == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], s)
        else:
            runs.append((s, s))
    return runs


class BackgroundRunner:
    """A runner on a daemon thread, woken early by the ledger's in-process subscription."""

    def __init__(
        self,
        runner: Runner,
        subscribe: Callable[[Callable[[list[RecordedEvent]], None]], Callable[[], None]] | None,
        *,
        poll_interval_s: float = 0.5,
    ) -> None:
        self.runner = runner
        self.subscribe = subscribe
        self.poll_interval_s = poll_interval_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        if self.subscribe is not None:
            self._unsubscribe = self.subscribe(lambda _events: self._wake.set())
        self._thread = threading.Thread(
            target=self.runner.run,
            args=(self._stop,),
            kwargs={"poll_interval_s": self.poll_interval_s, "wake": self._wake},
            name=f"projection-{self.runner.view.name}",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
