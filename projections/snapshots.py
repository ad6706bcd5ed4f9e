"""Agent-context snapshots: a read folds from the latest snapshot at or before the position
asked for instead of from position 1, and stays equal to the fold from position 1 (issue 19).

A snapshot of conversation C at position p holds the context folded through p, the chain
hash of C's event at p, and the store's erasure mark taken before that fold began. A read at
q ≥ p reads C's events p..q and folds p+1..q onto the snapshot only if

- the ledger's event at p still carries the snapshot's hash (the hash commits to the whole
  chain 1..p: a store rewritten, restored from a backup or swapped gives another hash), and
- the store's erasure mark is unchanged (any key destroyed since, by any process, drops
  every snapshot: an erased subject's plaintext must not outlive its key here; the same
  mark is what the codec's own key cache trusts, `ledger.shredding`).

Otherwise the conversation's snapshots are dropped and the read folds from position 1.

Which folds may leave snapshots (why a snapshot never holds an erased subject's plaintext):
only a read that saw the conversation's head (no `upto`, or an `upto` past the head), and
only if no `SubjectErased` is in the conversation. An erasure appends `SubjectErased` before
it destroys the key, so a fold that did not see it read its events before the key went, and
the mark (taken before reading) changes when it goes. A fold that did see it leaves nothing,
so an erased conversation is always folded from position 1 (erasures are rare; correctness
first). A point-in-time read below the head leaves nothing either: it cannot know whether an
erasure follows.

Erasure also drops snapshots eagerly: an append of `SubjectErased` through this `Ledger`
drops every snapshot (the subject may appear in other conversations' snapshots), and a read
that finds the erasure mark changed since the previous read drops every snapshot, not only
those of the conversation it reads. `close()` stops listening to the ledger.

Snapshots live in this process only, bounded (`max_snapshots` in all, least recently read
conversations dropped first, at most `max_per_conversation` each; a snapshot of a long
conversation takes ~100-180 KB of Python objects, bounded by the context's windows): nothing
decrypted is written anywhere, so neither the key scopes nor tenant isolation of the stored
form change, and a restart or a new version of the fold simply starts cold. One
`ContextSnapshots` serves one `Ledger`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.shredding import ShreddingCodec
from threadline.ledger.store import Ledger
from threadline.projections.context import AgentContext, ContextFold
from threadline.projections.text import clear_cache

ERASED = "SubjectErased"


@dataclass(frozen=True, slots=True)
class Snapshot:
    position: int
    hash: str  # the chain hash of the conversation's event at `position`
    mark: str | None  # the store's erasure mark before the fold that made it
    context: AgentContext


def erasure_mark_of(ledger: Ledger) -> Callable[[], str | None]:
    """How to read the store's erasure mark (None: a store whose codec destroys no keys)."""
    codec = ledger.codec
    if isinstance(codec, ShreddingCodec) and codec.table is not None:
        return codec.table.erasure_mark
    return lambda: None


class ContextSnapshots:
    """`context(conversation_id, upto)` equals `build_context(ledger.read(conversation_id,
    upto=upto))`, folding from a checked snapshot where there is one. A snapshot is kept at
    every `interval`-th position a head read folds through (for point-in-time reads) and at
    the head (for the next read of a conversation that grew by a few events)."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        interval: int = 128,
        max_snapshots: int = 1024,
        max_per_conversation: int = 8,
        erasure_mark: Callable[[], str | None] | None = None,
    ) -> None:
        """`max_snapshots=0` keeps none: every read folds from position 1."""
        if interval < 1 or max_snapshots < 0 or max_per_conversation < 2:
            raise ValueError("interval ≥ 1, max_snapshots ≥ 0, max_per_conversation ≥ 2")
        self._ledger = ledger
        self._interval = interval
        self._max_snapshots = max_snapshots
        self._max_per = max_per_conversation
        self._count = 0  # snapshots held, in all conversations
        self._mark = erasure_mark or erasure_mark_of(ledger)
        # conversation id -> position -> snapshot (positions ascending)
        self._store: OrderedDict[str, dict[int, Snapshot]] = OrderedDict()
        self._lock = threading.Lock()
        self._seen_mark: str | None = None  # the erasure mark at the last read
        self.hits = 0  # reads that folded from a snapshot
        self.misses = 0  # reads that folded from position 1
        # An erasure through this Ledger drops every snapshot at once, not at the next read
        # of an affected conversation: the subject may be in any conversation's snapshot.
        self.close = ledger.subscribe(self._on_append)

    def _on_append(self, events: list[RecordedEvent]) -> None:
        if any(e.type == ERASED for e in events):
            self.forget()

    def context(self, conversation_id: str, upto: int | None = None) -> AgentContext | None:
        """The context through `upto` (None: the head); None if the conversation has no
        events (or none through `upto`)."""
        mark = self._mark()  # before reading: an erasure after this changes it
        if mark != self._seen_mark:
            # A key destroyed since the last read (by any process): drop every snapshot now,
            # not only those of the conversation read next, and every analysed text.
            self.forget()
            clear_cache()
            self._seen_mark = mark
        snapshot = self._best(conversation_id, upto, mark)
        if snapshot is not None:
            events = self._ledger.read(conversation_id, after=snapshot.position - 1, upto=upto)
            if (
                events
                and events[0].position == snapshot.position
                and (events[0].hash == snapshot.hash)
            ):
                self.hits += 1
                if len(events) == 1:
                    return snapshot.context  # nothing since: the context is immutable
                return self._fold(conversation_id, snapshot.context, events[1:], upto, mark)
            self.forget(conversation_id)  # the ledger no longer holds what it was folded from
        self.misses += 1
        events = self._ledger.read(conversation_id, upto=upto)
        if not events:
            return None
        return self._fold(conversation_id, None, events, upto, mark)

    def forget(self, conversation_id: str | None = None) -> None:
        """Drops one conversation's snapshots (None: all)."""
        with self._lock:
            if conversation_id is None:
                self._store.clear()
                self._count = 0
            else:
                self._count -= len(self._store.pop(conversation_id, {}))

    def positions(self, conversation_id: str) -> list[int]:
        """Positions this process holds snapshots at (for tests and diagnostics)."""
        with self._lock:
            return sorted(self._store.get(conversation_id, {}))

    # -- internals -----------------------------------------------------------------------

    def _best(self, conversation_id: str, upto: int | None, mark: str | None) -> Snapshot | None:
        with self._lock:
            held = self._store.get(conversation_id)
            if not held:
                return None
            self._store.move_to_end(conversation_id)
            fit = [p for p in held if upto is None or p <= upto]
            if not fit:
                return None
            best = held[max(fit)]
            if best.mark != mark:
                self._store.clear()  # a key was destroyed: no snapshot is trusted any more
                self._count = 0
                return None
            return best

    def _fold(
        self,
        conversation_id: str,
        start: AgentContext | None,
        events: list[RecordedEvent],
        upto: int | None,
        mark: str | None,
    ) -> AgentContext:
        fold = ContextFold(start)
        reached_head = upto is None or not events or events[-1].position < upto
        keep = reached_head and not (start is not None and start.erased_subjects)
        made: list[Snapshot] = []
        interval = self._interval
        for e in events:
            fold.apply(e)
            if e.type == ERASED:
                keep = False
            elif keep and e.position % interval == 0:
                made.append(Snapshot(e.position, e.hash, mark, fold.snapshot()))
        context = fold.snapshot()
        if keep and events:
            last = events[-1]
            if not made or made[-1].position != last.position:
                made.append(Snapshot(last.position, last.hash, mark, context))
            self._keep(conversation_id, made, keep_checkpoint=interval)
        return context

    def _keep(self, conversation_id: str, made: list[Snapshot], *, keep_checkpoint: int) -> None:
        if not self._max_snapshots:
            return
        with self._lock:
            held = self._store.setdefault(conversation_id, {})
            self._store.move_to_end(conversation_id)
            before = len(held)
            # The previous head snapshot (off the checkpoint grid) is superseded by the new one.
            for p in [p for p in held if p % keep_checkpoint and p < made[-1].position]:
                del held[p]
            for s in made:
                held[s.position] = s
            while len(held) > self._max_per:
                # Thin the oldest checkpoints first; the head snapshot is the last to go.
                del held[min(held)]
            self._count += len(held) - before
            while self._count > self._max_snapshots:
                oldest = next(iter(self._store))  # this conversation is the newest
                if oldest != conversation_id:
                    self._count -= len(self._store.pop(oldest))
                elif len(held) > 1:
                    del held[min(held)]
                    self._count -= 1
                else:
                    self._count -= len(self._store.pop(oldest))
