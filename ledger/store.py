"""The conversation ledger: append with optimistic concurrency and idempotent event ids,
read a conversation or the global log, subscribe in process.

Append algorithm. The head (position, hash) of each recently used conversation is cached in
memory, and the cache is never trusted for correctness: the unique (conversation, position)
key in the database is. When an insert collides, the event ids are looked up first (a repeat
returns the original result, whatever the caller's expected version), then a caller that
gave an expected version gets a ConcurrencyConflictError, and one that did not is retried on the
fresh head. Several processes may share one database. Within a process, appends to one
conversation are queued on its lock (`ledger.serial`), so only another process can collide,
and an append without an expected version always lands at the head (a ConcurrencyConflictError
is only ever the answer to a stale expected version).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import IntegrityError, Notification, PersistenceError, StoredEvent

from threadline.ledger import records
from threadline.ledger.canonical import GENESIS_HASH
from threadline.ledger.codec import DataCodec, IdentityCodec, WouldBlockError
from threadline.ledger.envelope import AppendResult, NewEvent, RecordedEvent
from threadline.ledger.errors import (
    ConcurrencyConflictError,
    ConversationAlreadyStartedError,
    ConversationNotFoundError,
    IdempotencyConflictError,
    IntegrityViolationError,
    InvalidEventError,
    StoreUnavailableError,
)
from threadline.ledger.groupcommit import GroupCommitter, Ticket
from threadline.ledger.keyring import ERASED_DIGEST
from threadline.ledger.recorders import EventIdRecord, LedgerRecorder
from threadline.ledger.serial import ConversationLocks

if TYPE_CHECKING:
    from threadline.ledger.records import Draft
    from threadline.ledger.settings import LedgerSettings

log = logging.getLogger(__name__)

Listener = Callable[[list[RecordedEvent]], None]
START = "ConversationStarted"
MAX_BATCH = 1000
MAX_READ = 10_000
# Positions and sequences beyond this are refused as input: 2**53 is exact in JSON numbers
# and far inside a 64-bit database integer (a larger one ended in OverflowError).
MAX_POSITION = 2**53
HEAD_CACHE_SIZE = 100_000
# Without an expected version, an append collides only with another process (appends in
# this process are queued per conversation) and is retried on the fresh head; past this
# much time of losing it answers StoreUnavailableError (503), never a ConcurrencyConflictError.
APPEND_PATIENCE_S = 30.0
# How many times an append on the event loop waits for its conversation to be free before it
# is left to a worker thread (each wait ends when the holder lets go).
LOOP_WAITS = 8


class Ledger:
    def __init__(
        self,
        recorder: LedgerRecorder,
        *,
        codec: DataCodec | None = None,
        close: Callable[[], None] | None = None,
        clock: Callable[[], datetime] | None = None,
        group_commit: bool = False,
    ) -> None:
        self.recorder = recorder
        self._committer = GroupCommitter(recorder) if group_commit else None
        self.codec: DataCodec = codec or IdentityCodec()
        self._close = close
        self._clock = clock or (lambda: datetime.now(UTC))
        self._heads: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._heads_lock = threading.Lock()
        self._serial = ConversationLocks()
        # Appends made on an event loop and not yet answered, per conversation (loop only).
        self._tails: dict[str, _LoopTail] = {}
        self._quarantine: dict[str, IntegrityViolationError] = {}
        self._listeners: list[Listener] = []
        self._listeners_lock = threading.Lock()
        self._closed = False

    # -- writing -------------------------------------------------------------------------

    def append(
        self, conversation_id: str, event: NewEvent, expected_version: int | None = None
    ) -> AppendResult:
        return self.append_batch(conversation_id, [event], expected_version)[0]

    def append_batch(
        self,
        conversation_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None = None,
    ) -> list[AppendResult]:
        """Appends all events or none. `expected_version` is the version the caller last
        saw (0 for a new conversation); None appends at the current head."""
        records.check_conversation_id(conversation_id)
        _check_expected(expected_version)
        if not events:
            raise InvalidEventError("nothing to append")
        if len(events) > MAX_BATCH:
            raise InvalidEventError(f"a batch holds at most {MAX_BATCH} events")
        drafts = [records.draft(conversation_id, e) for e in events]
        if len(drafts) > 1 and len({d.event_id for d in drafts}) < len(drafts):
            raise InvalidEventError("the same event id appears twice in one batch")

        with self._serial.hold(conversation_id):
            return self._append_serialised(conversation_id, drafts, expected_version)

    async def append_on_loop(
        self, conversation_id: str, event: NewEvent, expected_version: int | None = None
    ) -> AppendResult | None:
        """`append`, awaited on the event loop without a worker thread: validated, sealed
        (canonical JSON, hash, encryption) here, then committed by the group committer,
        which resolves the futures of a whole group at once. The result is returned only
        once it is committed.

        Only the plain case is done here: group commit on, the conversation's head cached
        and matching `expected_version`, its data key cached, no shape error, and the
        conversation's lock free or held by this loop's own appends. Anything else answers
        None having appended nothing (nor created a key); the caller then calls `append` in
        a worker thread, which re-reads, retries, finds repeats and answers 409s. A repeated
        event id collides in the insert and also answers None. Invalid input raises
        InvalidEventError as `append` does; a failed commit, StoreUnavailableError.

        Appends to one conversation that arrive while one is being committed are sealed on
        top of it (the pending tail, `_LoopTail`) rather than waiting: the committer takes
        each only if the one before it was committed (`GroupCommitter.submit(after=)`), so
        the chain has no hole, and one that is not answers None like any collision. The
        conversation's lock is held from the first of them until the last is answered, so
        no other append of this process interleaves; a thread waiting for that lock stops
        the chain growing (no starvation)."""
        committer = self._committer
        encode = getattr(self.codec, "encode_without_io", None)
        if committer is None or encode is None:
            return None
        records.check_conversation_id(conversation_id)
        _check_expected(expected_version)
        item = records.draft(conversation_id, event)
        loop = asyncio.get_running_loop()
        claim_refresh = getattr(self.codec, "claim_refresh", None)
        look = claim_refresh() if claim_refresh is not None else None
        if look is not None:
            # The codec's periodic look at its key table (the erasure mark), in a worker
            # thread; appends go on meanwhile with the cached keys, as in `append`.
            loop.run_in_executor(None, look).add_done_callback(_log_failure)
        for _ in range(LOOP_WAITS):
            tail = self._tails.get(conversation_id)
            if tail is not None and tail.loop is not loop:
                return None  # another event loop's appends hold it
            if tail is not None and not tail.failed and not self._serial.waiting(conversation_id):
                position, head_hash, after, release = tail.position, tail.hash, tail.ticket, None
                break
            # Free, held by a worker thread (or waited for by one), or a failed tail
            # draining: wait, without a thread, for the conversation to be free, then look
            # again. A worker thread waiting means this loop stops adding to its tail.
            woken: asyncio.Future[None] = loop.create_future()
            release = self._serial.try_hold(
                conversation_id, on_free=functools.partial(_wake_soon, loop, woken)
            )
            if release is not None:
                with self._heads_lock:
                    head = self._heads.get(conversation_id)
                    if head is not None:
                        self._heads.move_to_end(conversation_id)
                if head is None:
                    release()
                    return None
                (position, head_hash), after, tail = head, None, None
                break
            await woken
        else:
            return None
        submitted = False
        try:
            if expected_version is not None and position != expected_version:
                return None  # the cache may be behind another process: `append` re-reads
            if _shape_error(conversation_id, position, [item]) is not None:
                return None
            try:
                sealed = self._seal(
                    conversation_id, position, head_hash, [item], _NoIOCodec(encode)
                )
            except WouldBlockError:
                return None
            if tail is None:
                assert release is not None
                tail = _LoopTail(loop, release)
            # The head, the listeners and the lock are seen to when the insert is answered,
            # even if this coroutine is cancelled meanwhile (the insert goes on regardless).
            ticket = committer.submit(
                *_insertion(sealed),
                after=after,
                on_answer=functools.partial(self._answered_on_loop, conversation_id, tail, sealed),
            )
            submitted = True
        finally:
            if release is not None and not submitted:
                release()
        if release is not None:
            self._tails[conversation_id] = tail
        tail.position, tail.hash, tail.ticket = position + 1, sealed[-1].hash, ticket
        tail.pending += 1
        assert ticket.future is not None
        try:
            sequences = await ticket.future
        except IntegrityError:
            return None  # a repeated event id, another process took the position, or the
            # event sealed before this one was not committed
        except PersistenceError as exc:
            raise StoreUnavailableError(f"append failed: {exc}") from exc
        if len(sequences) != 1:
            raise StoreUnavailableError("the recorder did not return sequence numbers")
        return AppendResult(conversation_id, item.event_id, position + 1, sequences[0])

    def _answered_on_loop(
        self, conversation_id: str, tail: _LoopTail, sealed: list[records.Sealed], ticket: Ticket
    ) -> None:
        """On the loop, in commit order: remember the head, tell the listeners, and release
        the conversation once its last pending append is answered."""
        try:
            if ticket.error is not None or len(ticket.sequences) != len(sealed):
                tail.failed = True  # what was sealed on top of it fails in the committer
                return
            last = sealed[-1]
            self._remember(conversation_id, last.stored.originator_version, last.hash)
            self._notify(conversation_id, sealed, ticket.sequences)  # holding the lock
        finally:
            tail.pending -= 1
            if tail.pending == 0:
                del self._tails[conversation_id]
                tail.release()

    def _append_serialised(
        self, conversation_id: str, drafts: list[Draft], expected_version: int | None
    ) -> list[AppendResult]:
        """Called holding the conversation's lock: only another process can collide."""
        refresh = False
        deadline = time.monotonic() + APPEND_PATIENCE_S
        collisions = 0
        while True:
            position, head_hash = self._head(conversation_id, refresh=refresh)
            if expected_version is not None and position != expected_version:
                if not refresh:
                    refresh = True  # the cache may be behind another process
                    continue
                duplicate = self._duplicates(conversation_id, drafts)
                if duplicate is not None:
                    return duplicate
                raise ConcurrencyConflictError(conversation_id, expected_version, position)
            shape_error = _shape_error(conversation_id, position, drafts)
            if shape_error is not None:
                if not refresh and position > 0:
                    refresh = True
                    continue
                duplicate = self._duplicates(conversation_id, drafts)
                if duplicate is not None:
                    return duplicate
                raise shape_error
            creates_key = getattr(self.codec, "creates_key", None)
            if creates_key is not None and creates_key(conversation_id):
                # Sealing would make a data key (ledger/shredding.py): a repeat of an erased
                # event must answer "duplicate" without one.
                duplicate = self._duplicates(conversation_id, drafts)
                if duplicate is not None:
                    return duplicate
            sealed = self._seal(conversation_id, position, head_hash, drafts)
            try:
                sequences = self._insert(sealed)
            except IntegrityError:
                duplicate = self._duplicates(conversation_id, drafts)
                if duplicate is not None:
                    return duplicate
                refresh = True
                if expected_version is not None:
                    actual, _ = self._head(conversation_id, refresh=True)
                    raise ConcurrencyConflictError(
                        conversation_id, expected_version, actual
                    ) from None
                # Another process took this position. Without an expected version the append
                # belongs at the head, whatever it is now: try again there (never a conflict),
                # after a short random pause so that the processes fall out of step.
                collisions += 1
                if time.monotonic() > deadline:
                    raise StoreUnavailableError(
                        f"conversation {conversation_id} is too busy: try again"
                    ) from None
                time.sleep(random.uniform(0, min(0.05, 0.001 * 2**collisions)))
                continue
            last = sealed[-1]
            self._remember(conversation_id, last.stored.originator_version, last.hash)
            results = [
                AppendResult(conversation_id, s.draft.event_id, s.stored.originator_version, seq)
                for s, seq in zip(sealed, sequences, strict=True)
            ]
            self._notify(conversation_id, sealed, sequences)
            return results

    def _seal(
        self,
        conversation_id: str,
        position: int,
        head_hash: str,
        drafts: list[Draft],
        codec: DataCodec | None = None,
    ) -> list[records.Sealed]:
        recorded_at = records.timestamp(self._clock())
        sealed = []
        prev = head_hash
        for offset, item in enumerate(drafts, start=1):
            s = records.seal(
                conversation_id, position + offset, prev, item, recorded_at, codec or self.codec
            )
            sealed.append(s)
            prev = s.hash
        return sealed

    def _insert(self, sealed: list[records.Sealed]) -> list[int]:
        stored, ids = _insertion(sealed)
        try:
            if self._committer is not None:
                sequences: Sequence[int] | None = self._committer.insert(stored, ids)
            else:
                sequences = self.recorder.insert_events(stored, event_ids=ids)
        except IntegrityError:
            raise
        except PersistenceError as exc:
            raise StoreUnavailableError(f"append failed: {exc}") from exc
        if sequences is None or len(sequences) != len(sealed):
            raise StoreUnavailableError("the recorder did not return sequence numbers")
        return list(sequences)

    def _duplicates(self, conversation_id: str, drafts: list[Draft]) -> list[AppendResult] | None:
        """The original results when every event id of the batch is already recorded with
        the same payload; IdempotencyConflictError when an id is recorded with another payload
        or only part of the batch is recorded; None when no id is recorded."""
        try:
            found = self.recorder.lookup_event_ids([str(d.event_id) for d in drafts])
        except PersistenceError as exc:
            raise StoreUnavailableError(f"read failed: {exc}") from exc
        if not found:
            return None
        results = []
        for d in drafts:
            rec = found.get(str(d.event_id))
            if rec is None:
                raise IdempotencyConflictError(
                    f"conversation {conversation_id}: part of this batch is already recorded "
                    f"(event {next(iter(found))}), the rest is not"
                )
            # An erased conversation's digests are overwritten (ledger.keyring): a retry of
            # one of its events cannot be compared any more and is taken as a repeat.
            if rec.conversation_id != conversation_id or rec.digest not in (
                d.digest,
                ERASED_DIGEST,
            ):
                # Never name the other conversation: it may be another tenant's, and the
                # caller may be anonymous (a chat message_id is an event id).
                where = (
                    "with a different payload"
                    if rec.conversation_id == conversation_id
                    else "elsewhere; choose another event id"
                )
                raise IdempotencyConflictError(f"event {d.event_id} is already recorded {where}")
            results.append(
                AppendResult(conversation_id, d.event_id, rec.position, rec.sequence, True)
            )
        # A "duplicate" of a record that is gone would acknowledge what no longer exists:
        # the index outliving the row is tampering (or a lost write), not a repeat.
        head, _ = self._head(conversation_id, refresh=True)
        gone = [r for r in results if r.position > head]
        if gone:
            raise IntegrityViolationError(
                conversation_id, gone[0].position, "indexed event id, but the record is missing"
            )
        return results

    # -- head cache ----------------------------------------------------------------------

    def _head(self, conversation_id: str, *, refresh: bool) -> tuple[int, str]:
        if not refresh:
            with self._heads_lock:
                head = self._heads.get(conversation_id)
                if head is not None:
                    self._heads.move_to_end(conversation_id)
                    return head
        rows = self._select(conversation_id, desc=True, limit=1)
        if not rows:
            return 0, GENESIS_HASH
        row = rows[0]
        position = row.originator_version
        digest = records.stored_hash(conversation_id, position, row.state)
        self._remember(conversation_id, position, digest)
        return position, digest

    def _remember(self, conversation_id: str, position: int, digest: str) -> None:
        with self._heads_lock:
            current = self._heads.get(conversation_id)
            if current is None or current[0] < position:
                self._heads[conversation_id] = (position, digest)
            self._heads.move_to_end(conversation_id)
            while len(self._heads) > HEAD_CACHE_SIZE:
                self._heads.popitem(last=False)

    # -- reading -------------------------------------------------------------------------

    def read(
        self,
        conversation_id: str,
        after: int = 0,
        upto: int | None = None,
        limit: int | None = None,
    ) -> list[RecordedEvent]:
        """Events of one conversation in position order (empty if it does not exist)."""
        records.check_conversation_id(conversation_id)
        _check_count("after", after)
        if upto is not None:
            _check_count("upto", upto)
        if limit is not None:
            _check_count("limit", limit, minimum=1)
        rows = self._select(conversation_id, gt=after, lte=upto, limit=limit)
        return [self._decode(r) for r in rows]

    def version(self, conversation_id: str) -> int:
        records.check_conversation_id(conversation_id)
        position, _ = self._head(conversation_id, refresh=True)
        return position

    def read_all(
        self, after: int = 0, limit: int = 500, *, decode: Collection[str] | None = None
    ) -> list[RecordedEvent]:
        """The global log: every conversation's events in `sequence` order. `decode`: only
        events of these types get their data decoded (decrypted, validated); the others come
        with `records.UNDECODED` as data and every envelope field — for a fold that counts
        every event but reads the data of a few types (the metrics runner)."""
        _check_count("after", after)
        _check_count("limit", limit, minimum=1, maximum=MAX_READ)
        while True:
            try:
                rows = self.recorder.select_notifications(after, limit, inclusive_of_start=False)
            except PersistenceError as exc:
                raise StoreUnavailableError(f"read failed: {exc}") from exc
            decoded = (
                self._decode_or_quarantine(r, decode is None or r.topic in decode) for r in rows
            )
            events = [e for e in decoded if e is not None]
            if events or len(rows) < limit:
                return events
            after = rows[-1].id  # a whole page withheld: read on, or followers would stop here

    def read_all_of(
        self, types: Collection[str], after: int = 0, limit: int = 500
    ) -> tuple[list[RecordedEvent], int]:
        """The global log's events of `types` only, and the sequence of the last record read
        (`after` if none): a follower that needs a few event types (the handoff-expiry scan)
        moves its cursor past the others without decoding or decrypting them — the stored
        `topic` is the event type. Only rows of `types` are decoded: one of them that does not
        decode quarantines its conversation as in `read_all`, and a conversation already
        quarantined has its rows of `types` withheld; rows of other types are never decoded,
        so damage in them is not detected here and quarantines nothing."""
        _check_count("after", after)
        _check_count("limit", limit, minimum=1, maximum=MAX_READ)
        try:
            rows = self.recorder.select_notifications(after, limit, inclusive_of_start=False)
        except PersistenceError as exc:
            raise StoreUnavailableError(f"read failed: {exc}") from exc
        wanted = (self._decode_or_quarantine(r) for r in rows if r.topic in types)
        return [e for e in wanted if e is not None], rows[-1].id if rows else after

    def quarantined(self) -> dict[str, IntegrityViolationError]:
        """Conversations withheld from the global log because a record of theirs does not
        decode (seen by this process), with the first error. Reading one directly raises."""
        with self._heads_lock:
            return dict(self._quarantine)

    def _decode_or_quarantine(self, row: Notification, data: bool = True) -> RecordedEvent | None:
        """One damaged record must not stop every reader of the global log (webhook routing,
        handoff expiry, live followers, projections): its conversation is quarantined — all
        later events are withheld from the global log too (no fold goes on past a hole) — and every
        other conversation carries on. The conversation's own reads answer the error."""
        conversation_id = str(row.originator_id)
        with self._heads_lock:
            if conversation_id in self._quarantine:
                return None
        try:
            return records.decode(
                conversation_id, row.originator_version, row.id, row.state, self.codec, data=data
            )
        except IntegrityViolationError as exc:
            with self._heads_lock:
                self._quarantine.setdefault(conversation_id, exc)
            log.error("conversation %s quarantined: %s", conversation_id, exc)
            return None

    def read_all_ids(self, after: int = 0, limit: int = 500) -> list[tuple[int, str]]:
        """(sequence, conversation id) of the global log after `after`, without decoding or
        decrypting any payload: what a follower that only reports "conversation X changed"
        needs (decoding every event there cost ~8% of the server's CPU under append load)."""
        _check_count("after", after)
        _check_count("limit", limit, minimum=1, maximum=MAX_READ)
        try:
            rows = self.recorder.select_notifications(after, limit, inclusive_of_start=False)
        except PersistenceError as exc:
            raise StoreUnavailableError(f"read failed: {exc}") from exc
        return [(r.id, str(r.originator_id)) for r in rows]

    def max_sequence(self) -> int:
        try:
            return self.recorder.max_notification_id() or 0
        except PersistenceError as exc:
            raise StoreUnavailableError(f"read failed: {exc}") from exc

    def _select(
        self,
        conversation_id: str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[Notification]:
        try:
            return self.recorder.select_conversation(
                conversation_id, gt=gt, lte=lte, desc=desc, limit=limit
            )
        except PersistenceError as exc:
            raise StoreUnavailableError(f"read failed: {exc}") from exc

    def _decode(self, row: Notification) -> RecordedEvent:
        return records.decode(
            str(row.originator_id), row.originator_version, row.id, row.state, self.codec
        )

    # -- in-process subscription ---------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Calls `listener(events)` after each commit made through this Ledger object, in
        the appending thread — for `append_on_loop`, on the event loop, so a listener must
        not block (nor append). Appends from other threads may be delivered out of `sequence`
        order and appends from other processes are not delivered at all: a consumer that
        needs every event keeps its last sequence and catches up with `read_all`. A failing
        listener is logged and does not affect the (already committed) append."""
        with self._listeners_lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._listeners_lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _notify(
        self, conversation_id: str, sealed: list[records.Sealed], sequences: list[int]
    ) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        if not listeners:
            return
        # Built from what was sealed: decoding the stored bytes again (parse, decrypt) was
        # ~4 % of the server's CPU under HTTP append load.
        events = [
            records.recorded(s, seq, self.codec) for s, seq in zip(sealed, sequences, strict=True)
        ]
        for listener in listeners:
            try:
                listener(list(events))
            except Exception:
                log.exception("ledger listener %r failed", listener)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._committer is not None:
            self._committer.close()
        if self._close is not None:
            self._close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_expected(expected_version: object) -> None:
    if expected_version is not None and (
        isinstance(expected_version, bool)
        or not isinstance(expected_version, int)
        or not 0 <= expected_version <= MAX_POSITION
    ):
        raise InvalidEventError(
            f"expected version must be an integer ≥ 0, not {expected_version!r}"
        )


def _insertion(sealed: list[records.Sealed]) -> tuple[list[StoredEvent], list[EventIdRecord]]:
    ids = [
        EventIdRecord(
            event_id=str(s.draft.event_id),
            conversation_id=str(s.stored.originator_id),
            position=s.stored.originator_version,
            digest=s.draft.digest,
        )
        for s in sealed
    ]
    return [s.stored for s in sealed], ids


@dataclass(eq=False, slots=True)
class _LoopTail:
    """A conversation's appends pending on one event loop: the lock they hold, and the
    position, hash and committer ticket of the last one, to seal the next one on."""

    loop: asyncio.AbstractEventLoop
    release: Callable[[], None]
    position: int = 0
    hash: str = ""
    ticket: Ticket | None = None
    pending: int = 0
    failed: bool = False


def _log_failure(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and (exc := done.exception()) is not None:
        log.warning("the codec's look at its key table failed: %s", exc)


def _wake_soon(loop: asyncio.AbstractEventLoop, woken: asyncio.Future[None]) -> None:
    """From any thread: resolves `woken` on its loop (unless the loop is gone)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_set_if_pending, woken)


def _set_if_pending(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)


class _NoIOCodec:
    """A codec whose `encode` is another codec's `encode_without_io` (for `seal`)."""

    __slots__ = ("encode",)

    def __init__(self, encode: Callable[[str, str, dict[str, Any]], Any]) -> None:
        self.encode = encode

    def decode(self, conversation_id: str, event_type: str, stored: Any) -> dict[str, Any]:
        raise NotImplementedError  # only ever used to seal


def _shape_error(conversation_id: str, position: int, drafts: list[Draft]) -> Exception | None:
    """ConversationStarted is position 1 and only position 1."""
    for offset, d in enumerate(drafts, start=1):
        at = position + offset
        if at == 1 and d.type != START:
            return ConversationNotFoundError(
                f"conversation {conversation_id} does not exist (start it with {START})"
            )
        if at > 1 and d.type == START:
            return ConversationAlreadyStartedError(
                f"conversation {conversation_id} is already started ({START} at position {at})"
            )
    return None


def _check_count(name: str, value: object, minimum: int = 0, maximum: int = MAX_POSITION) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidEventError(f"{name} must be an integer ≥ {minimum}, not {value!r}")
    if value > maximum:  # beyond what a database integer (or a JSON number) holds exactly
        raise InvalidEventError(f"{name} must be ≤ {maximum}")


def open_ledger(
    url: str | None = None,
    *,
    settings: LedgerSettings | None = None,
    codec: DataCodec | None = None,
    group_commit: bool | None = None,
) -> Ledger:
    """Opens the store named by `url` (default: `settings.database_url`). Group commit
    (default: `settings.group_commit`, on) applies to the durable backends. Without an
    explicit `codec`, personal fields are encrypted as the settings say (ledger.protection).
    `settings` comes from the root configuration; without it, the built-in defaults."""
    from threadline.ledger.backends import Backend, Kind, open_recorder
    from threadline.ledger.settings import LedgerSettings

    settings = settings or LedgerSettings()
    url = settings.database_url if url is None else url
    recorder, close = open_recorder(url, settings)
    if codec is None:
        from threadline.ledger.protection import open_codec

        try:
            codec = open_codec(url, recorder, settings)
        except BaseException:
            close()
            raise
    if group_commit is None:
        group_commit = settings.group_commit and Backend.parse(url).kind is not Kind.MEMORY
    return Ledger(recorder, codec=codec, close=close, group_commit=group_commit)
