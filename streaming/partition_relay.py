"""One relay loop per log partition (issue 18, THREADLINE_LOG_PARTITIONS = N > 1).

The global relay (`relay.Relay`) reads the global log, which over N partitions needs
`threadline_read_after`'s share lock on every partition row (a reader of the global
sequence must wait for every partition's append in flight) and makes one partition's
failure everyone's: one checkpoint, one publish queue. Here each partition p is relayed
on its own:

- **position** `(p, seq)`: the partition's sequence is gap-free and committed in order
  (each partition's sequences are issued under its head-row lock, held to commit), so the
  worker pages `seq > position` and tracks no gaps;
- **checkpoint** `<relay>.p<p>` in the same table as the global relay's, moved only after
  the broker acknowledged the batch (at least once, as before);
- **leader lock** per checkpoint name (PostgreSQL advisory lock), so two relay processes
  share the partitions between them and a standby takes over a dead one's;
- **producer** of its own, into Kafka partition p, so a slow or failing partition (its
  broker leader down, a poison batch) backs off alone while the others keep publishing.

A conversation lives in one partition, so its events reach one Kafka partition in their
order; consumers drop the republished tail after a crash by conversation position.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence

from eventsourcing.persistence import IntegrityError

from threadline.ledger.store import MAX_READ
from threadline.projections.views import Batch, TrackingState
from threadline.streaming.checkpoint import Checkpoint
from threadline.streaming.ports import Publisher
from threadline.streaming.relay import RelayLoop, RelayStats
from threadline.streaming.sealed import SealedLog

log = logging.getLogger(__name__)


def checkpoint_name(relay: str, partition: int) -> str:
    return f"{relay}.p{partition}"


def covered_by(source: SealedLog, partition: int, state: TrackingState) -> int:
    """The last `seq` of `partition` up to which the global relay's checkpoint `state`
    covers every event (global id ≤ its position and not a pending gap). Within a
    partition global ids grow with `seq` (both are issued under the partition's lock), so
    the covered events are a prefix."""
    covered = 0
    while rows := source.read_partition(partition, covered, MAX_READ):
        for seq, event in rows:
            if event.sequence > state.position or event.sequence in state.gaps:
                return covered
            covered = seq
    return covered


def seed_from_global(
    source: SealedLog, workers: Sequence[PartitionWorker], glob: Checkpoint
) -> None:
    """Switching a partitioned log from the global relay (`<relay>`) to this one: fresh
    per-partition checkpoints start where the global one had got to, so the topic does not
    get the whole log again. Nothing happens once any partition has moved."""
    state = glob.tracking()
    if state.position == 0 or any(w.checkpoint.tracking().position for w in workers):
        return
    for w in workers:
        seq = covered_by(source, w.partition, state)
        if seq:
            with contextlib.suppress(IntegrityError):  # another relay process seeded it
                w.checkpoint.record(Batch([], position=seq))
            log.info("relay %s: seeded at %d from %s", w.checkpoint.name, seq, glob.name)


class PartitionWorker(RelayLoop):
    """Log partition `partition` → its Kafka partition, from checkpoint `<relay>.p<p>`."""

    def __init__(
        self,
        source: SealedLog,
        partition: int,
        checkpoint: Checkpoint,
        publisher: Publisher,
        *,
        batch_size: int = 500,
        poll_interval_s: float = 0.05,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
    ) -> None:
        self.source = source
        self.partition = partition
        self.checkpoint = checkpoint
        self.publisher = publisher
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.stats = RelayStats()
        self._rng = random.Random()  # jitter only; not security relevant

    def step(self) -> int:
        """One batch: read after the checkpoint, publish, wait for acks, checkpoint."""
        position = self.checkpoint.tracking().position
        rows = self.source.read_partition(self.partition, position, self.batch_size)
        if not rows:
            return 0
        events = [event for _, event in rows]
        self.publisher.publish(events)  # PublishFailedError: checkpoint untouched
        self.checkpoint.record(Batch(events, position=rows[-1][0]))
        self.stats.published += len(events)
        self.stats.batches += 1
        self.stats.position = rows[-1][0]
        return len(events)

    def catch_up(self) -> int:
        total = 0
        while applied := self.step():
            total += applied
        return total

    def refresh_stats(self) -> None:
        self.stats.position = self.checkpoint.tracking().position
        self.stats.max_sequence = self.source.partition_heads().get(self.partition, 0)

    def close(self) -> None:
        try:
            self.publisher.close()
        finally:
            self.checkpoint.close()


class PartitionRelay:
    """The N workers of one relay name, one thread each under `run`."""

    def __init__(
        self,
        source: SealedLog,
        workers: Sequence[PartitionWorker],
        *,
        name: str = "relay",
        close_source: bool = False,
    ) -> None:
        self.source = source
        self.workers = list(workers)
        self.name = name
        self._close_source = close_source

    @classmethod
    def build(
        cls,
        source: SealedLog,
        make_checkpoint: Callable[[str], Checkpoint],
        make_publisher: Callable[[int], Publisher],
        *,
        name: str = "relay",
        close_source: bool = False,
        **worker_options: float,
    ) -> PartitionRelay:
        workers: list[PartitionWorker] = []
        try:
            for p in range(source.partitions):
                checkpoint = make_checkpoint(checkpoint_name(name, p))
                try:
                    publisher = make_publisher(p)
                except BaseException:
                    checkpoint.close()
                    raise
                workers.append(
                    PartitionWorker(
                        source,
                        p,
                        checkpoint,
                        publisher,
                        batch_size=int(worker_options.get("batch_size", 500)),
                        poll_interval_s=worker_options.get("poll_interval_s", 0.05),
                        backoff_initial_s=worker_options.get("backoff_initial_s", 0.2),
                        backoff_max_s=worker_options.get("backoff_max_s", 5.0),
                    )
                )
            glob = make_checkpoint(name)
            try:
                seed_from_global(source, workers, glob)
            finally:
                glob.close()
        except BaseException:
            for w in workers:
                with contextlib.suppress(Exception):
                    w.close()
            raise
        return cls(source, workers, name=name, close_source=close_source)

    @property
    def partitions(self) -> dict[int, RelayStats]:
        return {w.partition: w.stats for w in self.workers}

    @property
    def stats(self) -> RelayStats:
        """All partitions as one relay: positions and heads summed (so `lag` is the events
        not yet on the topic), failures summed, `last_success` the stalest partition's (a
        health check goes stale when any partition stops)."""
        each = [w.stats for w in self.workers]
        errors = [s.last_error for s in each if s.last_error]
        return RelayStats(
            published=sum(s.published for s in each),
            batches=sum(s.batches for s in each),
            failures=sum(s.failures for s in each),
            consecutive_failures=max((s.consecutive_failures for s in each), default=0),
            backoff_s=max((s.backoff_s for s in each), default=0.0),
            last_error=errors[0] if errors else None,
            last_success=min((s.last_success for s in each if s.leader), default=time.time()),
            leader=any(s.leader for s in each),
            position=sum(s.position for s in each),
            max_sequence=sum(s.max_sequence for s in each),
        )

    def step(self) -> int:
        """One batch of every partition (tests and `--once`)."""
        return sum(w.step() for w in self.workers)

    def catch_up(self) -> int:
        return sum(w.catch_up() for w in self.workers)

    def refresh_stats(self) -> None:
        for w in self.workers:
            w.refresh_stats()

    def run(self, stop: threading.Event, wake: threading.Event | None = None) -> None:
        """Every partition's loop in its own thread until `stop`; a `wake` (the ledger's
        NOTIFY) wakes them all, since a notification does not say which partition."""
        wakes = [threading.Event() for _ in self.workers]
        threads = [
            threading.Thread(
                target=w.run, args=(stop, e), name=f"relay-{self.name}-p{w.partition}", daemon=True
            )
            for w, e in zip(self.workers, wakes, strict=True)
        ]
        for t in threads:
            t.start()
        source = wake or threading.Event()
        try:
            while not stop.is_set():
                if source.wait(0.25):
                    source.clear()
                    for e in wakes:
                        e.set()
        finally:
            stop.set()
            for e in wakes:
                e.set()
            for t in threads:
                t.join(60)

    def close(self) -> None:
        for w in self.workers:
            with contextlib.suppress(Exception):  # close the rest whatever one raised
                w.close()
        if self._close_source:
            self.source.close()
