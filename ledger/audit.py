"""Tamper evidence: recompute every hash from what is stored, and export a conversation as
JSON Lines that verify without the database.

A record verifies when (1) its stored bytes are exactly the canonical JSON of what they
parse to (so even a whitespace edit is caught), (2) its envelope agrees with the columns it
is indexed by (conversation, position, type), (3) positions are gapless from 1, (4) its
`prev_hash` is the previous record's `hash` (genesis: 64 zeros) and (5) its `hash` is the
sha256 of its canonical envelope without `hash`. Verification reports the first position
that fails. Truncation of a conversation's newest events is not detectable from the chain
alone; compare with an exported head hash for that.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import Notification

from threadline.ledger import canonical
from threadline.ledger.errors import ConversationNotFoundError, IntegrityViolationError
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


def check_stored(conversation_id: str, position: int, prev_hash: str, row: Notification) -> str:
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
    return check_envelope(conversation_id, position, prev_hash, envelope, row.topic)


def verify_conversation(ledger: Ledger, conversation_id: str) -> int:
    """Returns the number of events verified; raises IntegrityViolationError at the first break."""
    position, prev = 0, canonical.GENESIS_HASH
    while True:
        rows = ledger.recorder.select_conversation(conversation_id, gt=position, limit=PAGE)
        for row in rows:
            prev = check_stored(conversation_id, position + 1, prev, row)
            position += 1
        if len(rows) < PAGE:
            break
    if position == 0:
        raise ConversationNotFoundError(f"conversation {conversation_id} does not exist")
    return position


def verify_all(ledger: Ledger) -> AuditResult:
    """One pass over the global log, keeping the head of every conversation seen."""
    heads: dict[str, tuple[int, str]] = {}
    events = 0
    after = 0
    while True:
        rows = ledger.recorder.select_notifications(after, PAGE, inclusive_of_start=False)
        for row in rows:
            conversation_id = str(row.originator_id)
            position, prev = heads.get(conversation_id, (0, canonical.GENESIS_HASH))
            heads[conversation_id] = (
                position + 1,
                check_stored(conversation_id, position + 1, prev, row),
            )
            events += 1
            after = row.id
        if len(rows) < PAGE:
            break
    return AuditResult(conversations=len(heads), events=events)


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
