"""Erasure of a data subject by crypto-shredding: for every conversation linked to the
subject, append `SubjectErased` and destroy the conversation's data key.

Order and crash safety. The event goes first, with an event id derived from (subject,
conversation, key): if the process dies before the key is destroyed, running the erasure
again appends nothing new (the id is a repeat) and destroys the key. A conversation without
an active key is already erased and is skipped, so erasing twice changes nothing. A
conversation that goes on after an erasure gets a new key; erasing the subject again
shreds that one too. An active key that no stored record uses (made for an append that
never committed) is destroyed without a second SubjectErased: the conversation counts as
already erased, since nothing readable was left (issue 17, class 9).

`SubjectErased.subject` holds a keyed hash of the subject (`hmac:…`), never the identifier:
the erasure record must not re-create the data it erases.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID, uuid5

from threadline.ledger.envelope import NewEvent
from threadline.ledger.errors import (
    ConversationNotFoundError,
    ErasureUnavailableError,
    IdempotencyConflictError,
    InvalidEventError,
)
from threadline.ledger.events import SubjectErased
from threadline.ledger.shredding import ShreddingCodec
from threadline.ledger.store import Ledger

log = logging.getLogger(__name__)

# Namespace of SubjectErased event ids (uuid5), fixed forever: retries must hit the same ids.
ERASURE_NAMESPACE = UUID("5f0b3c1e-8f5e-4d0a-9a53-2f1b7f1d9c41")
ACTOR = "system:erasure"
MAX_SUBJECT = 200
MAX_REASON = 200
PAGE = 1000


@dataclass(frozen=True, slots=True)
class ErasureReport:
    subject_ref: str
    erased: list[str] = field(default_factory=list)  # conversations shredded now
    already_erased: list[str] = field(default_factory=list)  # nothing left to shred

    def to_json(self) -> dict[str, object]:
        return {
            "subject_ref": self.subject_ref,
            "erased": self.erased,
            "already_erased": self.already_erased,
        }


def _check(subject: object, reason: object) -> tuple[str, str | None]:
    if (
        not isinstance(subject, str)
        or not 1 <= len(subject) <= MAX_SUBJECT
        or not subject.isprintable()
        or subject.strip() != subject
    ):
        raise InvalidEventError(
            f"subject must be 1-{MAX_SUBJECT} printable characters without surrounding spaces"
        )
    if reason is not None and (not isinstance(reason, str) or not 1 <= len(reason) <= MAX_REASON):
        raise InvalidEventError(f"reason must be 1-{MAX_REASON} characters")
    return subject, reason


def shredding_codec(ledger: Ledger) -> ShreddingCodec:
    codec = ledger.codec
    if not isinstance(codec, ShreddingCodec) or codec.table is None or codec.master is None:
        raise ErasureUnavailableError(
            "erasure needs encrypted personal data: this store has no master key "
            "(set THREADLINE_MASTER_KEY, see docs/privacy.md)"
        )
    return codec


def _key_in_use(ledger: Ledger, conversation_id: str, key_id: str) -> bool:
    """Does any stored record of the conversation hold data sealed with `key_id`? (Stored
    bytes are canonical JSON, so the sealed form `"k":"<key id>"` appears exactly so.)"""
    needle = f'"k":"{key_id}"'.encode()
    position = 0
    while True:
        rows = ledger.recorder.select_conversation(conversation_id, gt=position, limit=PAGE)
        for row in rows:
            if needle in bytes(row.state):
                return True
            position = row.originator_version
        if len(rows) < PAGE:
            return False


def erase_subject(
    ledger: Ledger,
    subject: str,
    reason: str | None = None,
    *,
    within: Callable[[str], bool] | None = None,
    actor: str = ACTOR,
) -> ErasureReport:
    """Shreds every conversation linked to `subject` (an identifier as recorded —
    visitor reference, identity subject, transport reference — or its bare form, e.g. a
    phone number without `tel:`). Idempotent. Raises InvalidEventError for a bad subject or
    reason and ErasureUnavailableError when the store does not encrypt personal data."""
    subject, reason = _check(subject, reason)
    codec = shredding_codec(ledger)
    table = codec.table
    assert table is not None
    ref = codec.subject_ref(subject)
    report = ErasureReport(subject_ref=ref)
    for conversation_id in table.conversations(codec.blinds(subject)):
        if within is not None and not within(conversation_id):
            continue  # another tenant's conversation: not the caller's to erase or name
        key = table.active_key(conversation_id)
        if key is None:
            report.already_erased.append(conversation_id)
            continue
        if not _key_in_use(ledger, conversation_id, key.key_id):
            table.destroy(key.key_id, datetime.now(UTC))
            codec.forget(conversation_id, key.key_id)
            report.already_erased.append(conversation_id)
            continue
        event = NewEvent(
            "SubjectErased",
            SubjectErased(subject=ref, reason=reason),
            event_id=uuid5(ERASURE_NAMESPACE, f"{ref}/{conversation_id}/{key.key_id}"),
            actor=actor,
        )
        try:
            ledger.append(conversation_id, event)
        except ConversationNotFoundError:
            pass  # the key was made for an append that never committed: nothing to record
        except IdempotencyConflictError:
            pass  # an interrupted earlier erasure recorded it, with another reason
        table.destroy(key.key_id, datetime.now(UTC))
        codec.forget(conversation_id, key.key_id)
        report.erased.append(conversation_id)
    log.info(
        "erasure of %s: %d conversation(s) shredded, %d already erased",
        ref,
        len(report.erased),
        len(report.already_erased),
    )
    return report


def subject_conversations(
    ledger: Ledger, subject: str, within: Callable[[str], bool] | None = None
) -> tuple[str, list[str]]:
    """(the subject's reference, the conversations linked to it that `within` accepts)."""
    subject, _ = _check(subject, None)
    codec = shredding_codec(ledger)
    assert codec.table is not None
    found = codec.table.conversations(codec.blinds(subject))
    return codec.subject_ref(subject), [c for c in found if within is None or within(c)]
