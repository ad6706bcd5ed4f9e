"""The outbox relay: global log → Kafka topic, at least once, in order per conversation.

The ledger's global log *is* the outbox: every committed event has a global `sequence`, so
no second table is written in the append transaction. The relay reads the log from its
checkpoint, publishes a batch, waits for the broker's acknowledgements (acks=all), and only
then records the new checkpoint. A crash between the two republishes the unacknowledged
tail; consumers drop those duplicates by conversation position.

Reading the log, tracking gaps (sequence numbers whose transaction may still commit) and
applying late ones exactly once is `threadline.projections.runner.Runner`'s job; the relay is a
tracked view whose "apply" is publish-then-checkpoint. Failures (broker down, database
down) are retried with capped exponential backoff and jitter; nothing advances meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from threadline.projections.runner import GlobalLog, Runner
from threadline.projections.views import Batch, TrackedView, TrackingState
from threadline.streaming.checkpoint import Checkpoint
from threadline.streaming.ports import Publisher

log = logging.getLogger(__name__)


@dataclass
class RelayStats:
    published: int = 0
    batches: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    backoff_s: float = 0.0
    last_error: str | None = None
    last_success: float = field(default_factory=time.time)
    leader: bool = False
    position: int = 0
    max_sequence: int = 0
    gaps: int = 0

    @property
    def lag(self) -> int:
        return max(0, self.max_sequence - self.position)


class _RelayView(TrackedView):
    """Adapter: lets the projections Runner drive publish-then-checkpoint."""

    def __init__(self, checkpoint: Checkpoint, publisher: Publisher, stats: RelayStats) -> None:
        self.name = checkpoint.name
        self.checkpoint = checkpoint
        self.publisher = publisher
        self.stats = stats

    @property
    def tracking_name(self) -> str:
        return f"relay:{self.name}"

    def tracking(self) -> TrackingState:
        return self.checkpoint.tracking()

    def commit(self, batch: Batch) -> None:
        if batch.events:
            self.publisher.publish(batch.events)  # PublishFailedError: checkpoint untouched
        self.checkpoint.record(batch)
        self.stats.published += len(batch.events)
        self.stats.batches += 1

    def reset(self) -> None:
        self.checkpoint.reset()


class RelayLoop:
    """Lead, step, back off: the loop of one relay (`Relay`, or one log partition's
    `partition_relay.PartitionWorker`). Needs `checkpoint`, `stats`, `step()`,
    `refresh_stats()`, `poll_interval_s`, `backoff_initial_s`, `backoff_max_s`, `_rng`."""

    checkpoint: Checkpoint
    stats: RelayStats
    poll_interval_s: float
    backoff_initial_s: float
    backoff_max_s: float
    _rng: random.Random

    def step(self) -> int:
        raise NotImplementedError

    def refresh_stats(self) -> None:
        raise NotImplementedError

    def run(self, stop: threading.Event, wake: threading.Event | None = None) -> None:
        """Publishes until `stop` is set. Never gives up: a relay that waits for the broker
        or the database is what we want during an outage."""
        wake = wake or threading.Event()
        backoff = self.backoff_initial_s
        refreshed = 0.0
        while not stop.is_set():
            try:
                self.stats.leader = self.checkpoint.lead()
                if not self.stats.leader:
                    stop.wait(1.0)  # a standby: another relay holds the checkpoint
                    continue
                published = self.step()
                if published or time.monotonic() - refreshed > 1.0:
                    self.refresh_stats()
                    refreshed = time.monotonic()
            except Exception as exc:
                self._failed(exc, backoff)
                with contextlib.suppress(Exception):  # lag keeps growing during an outage
                    self.refresh_stats()
                # Full jitter keeps a fleet of relays from retrying in lock step.
                stop.wait(backoff * (0.5 + self._rng.random() / 2))
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            if self.stats.consecutive_failures:
                log.info(
                    "relay %s: recovered after %d failed attempts",
                    self.checkpoint.name,
                    self.stats.consecutive_failures,
                )
            self.stats.consecutive_failures = 0
            self.stats.backoff_s = 0.0
            self.stats.last_success = time.time()
            backoff = self.backoff_initial_s
            if published:
                continue
            wake.wait(self.poll_interval_s)
            wake.clear()

    def _failed(self, exc: Exception, backoff: float) -> None:
        self.stats.failures += 1
        self.stats.consecutive_failures += 1
        self.stats.backoff_s = backoff
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        # One line per failure, the stack only for the first of a run (no log flood).
        log.warning(
            "relay %s: attempt failed (%s); retrying in ~%.1f s",
            self.checkpoint.name,
            self.stats.last_error,
            backoff,
            exc_info=self.stats.consecutive_failures == 1,
        )


class Relay(RelayLoop):
    def __init__(
        self,
        source: GlobalLog,
        checkpoint: Checkpoint,
        publisher: Publisher,
        *,
        batch_size: int = 500,
        gap_timeout_s: float = 10.0,
        poll_interval_s: float = 0.05,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        clock: Callable[[], float] = time.time,
        close_source: bool = False,
    ) -> None:
        self.source = source
        self._close_source = close_source
        self.checkpoint = checkpoint
        self.publisher = publisher
        self.stats = RelayStats()
        self.poll_interval_s = poll_interval_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.runner = Runner(
            source,
            _RelayView(checkpoint, publisher, self.stats),
            batch_size=batch_size,
            gap_timeout_s=gap_timeout_s,
            clock=clock,
        )
        self._rng = random.Random()  # jitter only; not security relevant

    def step(self) -> int:
        """One batch (plus late gap fillers): returns how many events were published."""
        return self.runner.step()

    def catch_up(self) -> int:
        total = 0
        while applied := self.step():
            total += applied
        return total

    def refresh_stats(self) -> None:
        state = self.checkpoint.tracking()
        self.stats.position = state.position
        self.stats.gaps = len(state.gaps)
        self.stats.max_sequence = self.source.max_sequence()

    def close(self) -> None:
        self.publisher.close()
        self.checkpoint.close()
        closer = getattr(self.source, "close", None)
        if self._close_source and closer is not None:
            closer()
