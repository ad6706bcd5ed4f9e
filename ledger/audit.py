"""Tamper evidence: recompute every hash from what is stored, and export a conversation as
JSON Lines that verify without the database.

A record verifies when (1) its stored bytes are exactly the canonical JSON of what they
parse to (so even a whitespace edit is caught), (2) its envelope agrees with the columns it
is indexed by (conversation, position, type), (3) positions are gapless from 1, (4) its
`prev_hash` is the previous record's `hash` (genesis: 64 zeros) and (5) its `hash` is the
sha256 of its canonical envelope without `hash`, and (6) the idempotency table agrees: each
record's event id is indexed at its position, and no position beyond the chain's head is
indexed (deleting a conversation's newest events leaves their ids behind). Verification
reports the first position that fails; `survey_all` reports every broken conversation.
What the chain and the index cannot show — both edited consistently by someone with full
write access — is described in docs/integrity.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import Notification

from threadline.ledger import canonical
from threadline.ledger.errors import ConversationNotFoundError, IntegrityViolationError
from threadline.ledger.recorders import HeadsReader
from threadline.ledger.store import Ledger

PAGE = 1000


@dataclass(frozen=True, slots=True)
class AuditResult:
    conversations: int
    events: int


def check_envelope(
    conversation_id: str, position: int, prev_hash: str, envelope: Any, topic: str | None = None
) -> str:
    """Checks one parsed envelope (without `sequence`) and returns its hash."""

    def fail(reason: str) -> IntegrityViolationError:
        return IntegrityViolationError(conversation_id, position, reason)

    if not isinstance(envelope, dict):
        raise fail("record is not a JSON object")
    body = dict(envelope)
    stored_hash = body.pop("hash", None)
    if body.get("conversation_id") != conversation_id:
        raise fail(f"record names conversation {body.get('conversation_id')!r}")
    if body.get("position") != position:
        raise fail(f"record claims position {body.get('position')!r} (a gap or a move)")
    if topic is not None and body.get("type") != topic:
        raise fail(f"record type {body.get('type')!r} differs from its index ({topic!r})")
    if body.get("prev_hash") != prev_hash:
        raise fail("prev_hash does not match the hash of the previous event")
    try:
        actual = canonical.sha256_hex(canonical.dumps(body))
    except canonical.NotCanonicalError as exc:
        raise fail(f"record is not canonical JSON: {exc}") from None
    if stored_hash != actual:
        raise fail("hash does not match the recomputed hash of the stored record")
    return actual


def check_stored(
    conversation_id: str, position: int, prev_hash: str | None, row: Notification
) -> str:
    """One stored record; `prev_hash` None: chained to the hash it claims (its predecessor
    is not read)."""
    if str(row.originator_id) != conversation_id:
        raise IntegrityViolationError(conversation_id, position, "row of another conversation")
    if row.originator_version != position:
        raise IntegrityViolationError(
            conversation_id, position, f"missing; next stored position is {row.originator_version}"
        )
    try:
        envelope = canonical.loads(row.state)
        exact = canonical.dumps(envelope) == bytes(row.state)
    except (ValueError, canonical.NotCanonicalError) as exc:
        raise IntegrityViolationError(
            conversation_id, position, f"unreadable record: {exc}"
        ) from None
    if not exact:
        raise IntegrityViolationError(
            conversation_id, position, "stored bytes differ from their canonical form"
        )
    if prev_hash is None:
        prev_hash = str(envelope.get("prev_hash")) if isinstance(envelope, dict) else ""
    return check_envelope(conversation_id, position, prev_hash, envelope, row.topic)


def verify_conversation(ledger: Ledger, conversation_id: str) -> int:
    """Returns the number of events verified; raises IntegrityViolationError at the first break."""
    position, prev = 0, canonical.GENESIS_HASH
    while True:
        rows = ledger.recorder.select_conversation(conversation_id, gt=position, limit=PAGE)
        for row in rows:
            prev = check_stored(conversation_id, position + 1, prev, row)
            position += 1
        _check_indexed(ledger, conversation_id, rows)
        if len(rows) < PAGE:
            break
    indexed = ledger.recorder.indexed_heads(conversation_id).get(conversation_id, 0)
    if position == 0 and indexed == 0:
        raise ConversationNotFoundError(f"conversation {conversation_id} does not exist")
    _check_head(conversation_id, position, indexed)
    return position


@dataclass(frozen=True, slots=True)
class AuditReport:
    conversations: int
    events: int
    broken: tuple[IntegrityViolationError, ...]
    # (position, hash) of each conversation's last record that verified, for checkpoints
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)
    # the hash found at each watched position (`survey_all(watch=...)`)
    hashes_at: dict[str, str] = field(default_factory=dict)
    last_sequence: int = 0


def survey_all(ledger: Ledger, watch: Mapping[str, int] | None = None) -> AuditReport:
    """One pass over the global log, keeping the head of every conversation seen; a broken
    conversation is noted (at its first break) and the pass goes on with the others.
    `watch`: conversation → position whose hash to report (a checkpoint's heads)."""
    watch = watch or {}
    hashes_at: dict[str, str] = {}
    heads: dict[str, tuple[int, str]] = {}
    broken: dict[str, IntegrityViolationError] = {}
    events = 0
    after = 0
    while True:
        rows = ledger.recorder.select_notifications(after, PAGE, inclusive_of_start=False)
        for row in rows:
            after = row.id
            conversation_id = str(row.originator_id)
            if conversation_id in broken:
                continue
            position, prev = heads.get(conversation_id, (0, canonical.GENESIS_HASH))
            try:
                digest = check_stored(conversation_id, position + 1, prev, row)
                _check_indexed(ledger, conversation_id, [row])
            except IntegrityViolationError as exc:
                broken[conversation_id] = exc
                continue
            heads[conversation_id] = (position + 1, digest)
            if watch.get(conversation_id) == position + 1:
                hashes_at[conversation_id] = digest
            events += 1
        if len(rows) < PAGE:
            break
    for conversation_id, indexed in ledger.recorder.indexed_heads().items():
        if conversation_id in broken:
            continue
        try:
            _check_head(conversation_id, heads.get(conversation_id, (0, ""))[0], indexed)
        except IntegrityViolationError as exc:
            broken[conversation_id] = exc
    seen = set(heads) | set(broken)
    ordered = tuple(broken[c] for c in sorted(broken))
    return AuditReport(
        conversations=len(seen),
        events=events,
        broken=ordered,
        heads=heads,
        hashes_at=hashes_at,
        last_sequence=after,
    )


def survey_since(ledger: Ledger, heads: Mapping[str, tuple[int, str]], after: int) -> AuditReport:
    """What `survey_all(watch=heads)` reports about a checkpoint's `heads` (taken at global
    sequence `after`), without reading every event: only conversations with log entries
    after `after` are read, and only from their checkpointed head on; every other one has its
    stored head row read and re-hashed (one indexed read each), which shows a cut, deleted or
    rewritten head. The heads returned carry forward the checkpoint's for those. What this
    does not read, a break below an untouched checkpointed head, `survey_all` (`audit verify
    --all`) still finds: a carried-forward head never hides it, it is what was verified then.

    A conversation broken since keeps its checkpointed head (it stays watched); one broken
    and never checkpointed is left out, as by `survey_all`."""
    top = ledger.recorder.max_notification_id() or 0
    touched: set[str] = set()
    last_sequence = after
    while True:
        rows = ledger.recorder.select_notifications(last_sequence, PAGE, inclusive_of_start=False)
        for row in rows:
            last_sequence = row.id
            touched.add(str(row.originator_id))
        if len(rows) < PAGE:
            break
    if top < after:  # the global log was cut below the checkpoint: nothing above it reads
        last_sequence = top
    out = _Survey(ledger)
    untouched = [c for c in heads if c not in touched]
    stored = _stored_heads(ledger, untouched)
    for conversation_id in untouched:
        out.check_head(conversation_id, heads[conversation_id], stored, touched)
    for conversation_id in sorted(touched):
        out.follow(conversation_id, heads.get(conversation_id))
    ordered = tuple(out.broken[c] for c in sorted(out.broken))
    return AuditReport(
        conversations=len(set(out.heads) | set(out.broken)),
        events=out.events,
        broken=ordered,
        heads=out.heads,
        hashes_at=out.hashes_at,
        last_sequence=last_sequence,
    )


class _Survey:
    """The state `survey_since` builds, conversation by conversation."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.heads: dict[str, tuple[int, str]] = {}
        self.hashes_at: dict[str, str] = {}
        self.broken: dict[str, IntegrityViolationError] = {}
        self.events = 0

    def check_head(
        self,
        conversation_id: str,
        checkpointed: tuple[int, str],
        stored: Mapping[str, Notification],
        touched: set[str],
    ) -> None:
        """An untouched checkpointed conversation: its stored head must be the checkpointed
        row. Above it (a row whose sequence is not above the checkpoint's, committed after
        the checkpoint read the log): follow it like a touched one."""
        row = stored.get(conversation_id)
        if row is None:
            return  # gone: absent from `heads`, which `checkpoint.compare` names as deleted
        position, expected = checkpointed
        if row.originator_version > position:
            touched.add(conversation_id)
            return
        try:
            if row.originator_version == position and _unchanged(row, expected):
                digest = expected
            else:
                digest = _rehash(conversation_id, row)
        except IntegrityViolationError as exc:
            self.broken[conversation_id] = exc
            digest = ""
        self.heads[conversation_id] = (row.originator_version, digest)
        if row.originator_version == position:
            self.hashes_at[conversation_id] = digest
        self.events += 1

    def follow(self, conversation_id: str, checkpointed: tuple[int, str] | None) -> None:
        """Verifies the conversation from its checkpointed head (re-hashed, it must still be
        the checkpointed record) or from its first event, to its newest."""
        position, prev = 0, canonical.GENESIS_HASH
        if checkpointed is not None:
            position = checkpointed[0] - 1
        try:
            while True:
                rows = self.ledger.recorder.select_conversation(
                    conversation_id, gt=position, limit=PAGE
                )
                for row in rows:
                    if checkpointed is not None and position + 1 == checkpointed[0]:
                        prev = self._checkpointed_row(conversation_id, position + 1, row)
                    else:
                        prev = check_stored(conversation_id, position + 1, prev, row)
                    position += 1
                    self.heads[conversation_id] = (position, prev)
                    self.events += 1
                _check_indexed(self.ledger, conversation_id, rows)
                if len(rows) < PAGE:
                    break
            if conversation_id not in self.heads:
                self._below(conversation_id)  # nothing from the checkpointed head on: a cut
                return
            indexed = self.ledger.recorder.indexed_heads(conversation_id).get(conversation_id, 0)
            _check_head(conversation_id, position, indexed)
        except IntegrityViolationError as exc:
            self._broke(conversation_id, checkpointed, exc)

    def _checkpointed_row(self, conversation_id: str, position: int, row: Notification) -> str:
        if row.originator_version != position:
            raise IntegrityViolationError(
                conversation_id,
                position,
                f"missing; next stored position is {row.originator_version}",
            )
        digest = _rehash(conversation_id, row)
        self.hashes_at[conversation_id] = digest
        return digest

    def _below(self, conversation_id: str) -> None:
        rows = self.ledger.recorder.select_conversation(conversation_id, desc=True, limit=1)
        if rows:
            self.heads[conversation_id] = (rows[0].originator_version, "")

    def _broke(
        self,
        conversation_id: str,
        checkpointed: tuple[int, str] | None,
        exc: IntegrityViolationError,
    ) -> None:
        self.broken[conversation_id] = exc
        if checkpointed is None:
            self.heads.pop(conversation_id, None)  # never checkpointed: left out
        elif self.hashes_at.get(conversation_id) == checkpointed[1]:
            self.heads[conversation_id] = checkpointed  # broken after it: stays watched
        elif conversation_id not in self.heads:
            # Its checkpointed record is missing: the chain reads at most up to the one below.
            self.heads[conversation_id] = (checkpointed[0] - 1, "")


def _stored_heads(ledger: Ledger, conversation_ids: Sequence[str]) -> dict[str, Notification]:
    """The newest stored record of each: in batches where the recorder can
    (`HeadsReader`), else one indexed read per conversation."""
    if isinstance(ledger.recorder, HeadsReader):
        return ledger.recorder.select_heads(conversation_ids)
    return _heads_one_by_one(ledger, conversation_ids)


def _heads_one_by_one(ledger: Ledger, conversation_ids: Sequence[str]) -> dict[str, Notification]:
    out = {}
    for conversation_id in conversation_ids:
        rows = ledger.recorder.select_conversation(conversation_id, desc=True, limit=1)
        if rows:
            out[conversation_id] = rows[0]
    return out


def _unchanged(row: Notification, digest: str) -> bool:
    """Whether the stored record is the one whose hash is `digest` (a checkpointed head),
    without parsing it: its bytes less the `"hash"` entry hash to `digest` (so its content
    is that record's), the entry sits where canonical key order puts it (before `leg_id`)
    and the type column is the one the record names. False for anything else, and the
    caller re-checks the record in full (`_rehash`), which says what is wrong."""
    state = bytes(row.state)
    entry = b',"hash":"' + digest.encode("ascii") + b'"'
    if state.count(entry) != 1:
        return False
    at = state.index(entry)
    if not state.startswith(b',"leg_id":', at + len(entry)):
        return False
    if not state.endswith(b',"type":' + canonical.scalar(str(row.topic)).encode() + b"}"):
        return False
    return canonical.sha256_hex(state[:at] + state[at + len(entry) :]) == digest


def _rehash(conversation_id: str, row: Notification) -> str:
    """A record checked on its own (canonical bytes, position, type, its hash), chained to
    the `prev_hash` it claims: the chain below it is not read here."""
    return check_stored(conversation_id, row.originator_version, None, row)


def verify_all(ledger: Ledger) -> AuditResult:
    """Every conversation; raises the first break found (see `survey_all` for all)."""
    report = survey_all(ledger)
    if report.broken:
        raise report.broken[0]
    return AuditResult(conversations=report.conversations, events=report.events)


def _check_indexed(ledger: Ledger, conversation_id: str, rows: Sequence[Notification]) -> None:
    """Each record's event id is indexed at the record's own position."""
    ids: dict[str, int] = {}
    for row in rows:
        envelope = canonical.loads(row.state)
        event_id = envelope.get("event_id") if isinstance(envelope, dict) else None
        if isinstance(event_id, str):
            ids[event_id] = row.originator_version
    found = ledger.recorder.lookup_event_ids(list(ids))
    for event_id, position in ids.items():
        rec = found.get(event_id)
        if rec is None or rec.conversation_id != conversation_id or rec.position != position:
            raise IntegrityViolationError(
                conversation_id, position, "its event id is not indexed here (a rewritten record)"
            )


def _check_head(conversation_id: str, position: int, indexed: int) -> None:
    if indexed > position:
        raise IntegrityViolationError(
            conversation_id,
            position + 1,
            f"missing: events up to position {indexed} were recorded and are gone "
            "(the newest events were deleted)",
        )


def export_lines(ledger: Ledger, conversation_id: str) -> Iterator[str]:
    """The stored envelopes (plus `sequence`) as canonical JSON Lines."""
    position = 0
    while True:
        rows = ledger.recorder.select_conversation(conversation_id, gt=position, limit=PAGE)
        for row in rows:
            try:
                envelope = canonical.loads(row.state)
                envelope["sequence"] = row.id
            except (ValueError, TypeError) as exc:
                raise IntegrityViolationError(
                    conversation_id, row.originator_version, f"unreadable record: {exc}"
                ) from None
            yield canonical.dumps(envelope).decode("utf-8")
            position = row.originator_version
        if len(rows) < PAGE:
            break
    if position == 0:
        raise ConversationNotFoundError(f"conversation {conversation_id} does not exist")


def verify_lines(lines: Iterable[str]) -> AuditResult:
    """Verifies an export (one or more conversations, each in position order)."""
    heads: dict[str, tuple[int, str]] = {}
    events = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            envelope = json.loads(line)
        except ValueError as exc:
            raise IntegrityViolationError("?", 0, f"line {number} is not JSON: {exc}") from None
        if not isinstance(envelope, dict) or not isinstance(envelope.get("conversation_id"), str):
            raise IntegrityViolationError("?", 0, f"line {number} is not an exported event")
        envelope.pop("sequence", None)
        conversation_id = envelope["conversation_id"]
        position, prev = heads.get(conversation_id, (0, canonical.GENESIS_HASH))
        heads[conversation_id] = (
            position + 1,
            check_envelope(conversation_id, position + 1, prev, envelope),
        )
        events += 1
    return AuditResult(conversations=len(heads), events=events)
