"""An event's stored form and back: validation of what is appended (`draft`), the sealed
envelope that is stored and hashed (`seal`), and decoding of stored bytes (`decode`).

Stored state = canonical JSON of the envelope without `sequence` (the database assigns it on
insert). `hash` = sha256 of the canonical JSON of that envelope without `hash`; it includes
`prev_hash`, so each event commits to the whole history of its conversation.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from pydantic import BaseModel
from pydantic_core import from_json

from threadline.ledger import bounds, canonical
from threadline.ledger.codec import DataCodec
from threadline.ledger.envelope import NewEvent, RecordedEvent
from threadline.ledger.errors import IntegrityViolationError, InvalidEventError
from threadline.ledger.events import EVENT_TYPES, EventData, OpaqueData, parse_data
from threadline.ledger.upcasting import upcast

CONVERSATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
MAX_REF = 200


def check_conversation_id(conversation_id: object) -> str:
    if not isinstance(conversation_id, str) or not CONVERSATION_ID.fullmatch(conversation_id):
        raise InvalidEventError(
            f"invalid conversation id {conversation_id!r}: 1-128 characters of "
            "letters, digits and . _ : @ - (starting with a letter or digit)"
        )
    return conversation_id


def _check_ref(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_REF or not value.isprintable():
        raise InvalidEventError(f"{name} must be 1-{MAX_REF} printable characters or null")
    return value


def _finite(value: object) -> bool:
    """False if a NaN/Infinity hides anywhere (pydantic's JSON mode would turn it into null,
    silently changing what the caller sent)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    return True


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(slots=True)
class Draft:
    """A validated `NewEvent`, not yet placed at a position."""

    event_id: UUID
    type: str
    schema_version: int
    data: dict[str, Any]
    data_json: str  # canonical JSON text of `data`, serialised once
    leg_id: str | None
    actor: str | None
    occurred_at: datetime | None
    digest: str  # what makes a repeat of this event id "the same event"


def _may_hold_non_finite(model: type[EventData]) -> bool:
    """Whether a payload model has fields through which NaN/Infinity could pass validation
    (floats without bounds, Any, containers); cached per model."""
    cached = _NON_FINITE_CACHE.get(model)
    if cached is None:
        cached = False
        for info in model.model_fields.values():
            bounded = any(hasattr(m, "ge") or hasattr(m, "le") for m in info.metadata)
            text = str(info.annotation)
            if (
                "Any" in text
                or "dict" in text
                or "list" in text
                or ("float" in text and not bounded)
            ):
                cached = True
        _NON_FINITE_CACHE[model] = cached
    return cached


_NON_FINITE_CACHE: dict[type[EventData], bool] = {}


def draft(conversation_id: str, event: object) -> Draft:
    if not isinstance(event, NewEvent):
        raise InvalidEventError(f"expected a NewEvent, got {type(event).__name__}")
    if not isinstance(event.type, str):
        raise InvalidEventError("event type must be a string")
    payload = parse_data(event.type, event.data)
    event_id = event.event_id
    if not isinstance(event_id, UUID):
        try:
            event_id = UUID(str(event_id))
        except ValueError:
            raise InvalidEventError(f"event_id {event_id!r} is not a UUID") from None
    occurred_at = event.occurred_at
    if occurred_at is not None and (
        not isinstance(occurred_at, datetime) or occurred_at.utcoffset() is None
    ):
        raise InvalidEventError("occurred_at must be a timezone-aware datetime")
    leg_id = _check_ref("leg_id", event.leg_id)
    actor = _check_ref("actor", event.actor)
    model = type(payload)
    if _may_hold_non_finite(model) and not _finite(payload.model_dump()):
        raise InvalidEventError(f"{event.type}: NaN and infinite numbers are not valid JSON")
    data = payload.model_dump(mode="json")
    if isinstance(event.data, BaseModel):
        bounds.check_data(data)  # built in process: its raw form was not checked
    try:
        data_json = canonical.dumps(data).decode("utf-8")
        digest = canonical.sha256_hex(
            canonical.join(
                {
                    "conversation_id": canonical.scalar(conversation_id),
                    "type": canonical.scalar(event.type),
                    "data": data_json,
                    "leg_id": canonical.scalar(leg_id),
                    "actor": canonical.scalar(actor),
                }
            )
        )
    except canonical.NotCanonicalError as exc:
        raise InvalidEventError(f"{event.type}: data is not representable as JSON: {exc}") from None
    return Draft(
        event_id,
        event.type,
        model.schema_version,
        data,
        data_json,
        leg_id,
        actor,
        occurred_at,
        digest,
    )


@dataclass(slots=True)
class Sealed:
    stored: StoredEvent
    draft: Draft
    hash: str
    prev_hash: str = ""
    occurred_at: str = ""  # as stored
    recorded_at: str = ""


def seal(
    conversation_id: str,
    position: int,
    prev_hash: str,
    item: Draft,
    recorded_at: datetime | str,
    codec: DataCodec,
) -> Sealed:
    """The stored form at `position`. `recorded_at` may be given pre-formatted (a batch
    shares one)."""
    recorded = recorded_at if isinstance(recorded_at, str) else timestamp(recorded_at)
    stored_data = codec.encode(conversation_id, item.type, item.data)
    try:
        data_json = (
            item.data_json
            if stored_data is item.data
            else canonical.dumps(stored_data).decode("utf-8")
        )
        occurred = timestamp(item.occurred_at) if item.occurred_at else recorded
        # The canonical form written out directly, keys in sorted order ("hash" sits between
        # "event_id" and "leg_id"); tests check it equals canonical.dumps of what it parses to.
        head = (
            f'{{"actor":{canonical.scalar(item.actor)},'
            f'"conversation_id":{canonical.scalar(conversation_id)},'
            f'"data":{data_json},"event_id":"{item.event_id}"'
        )
        tail = (
            f',"leg_id":{canonical.scalar(item.leg_id)},"occurred_at":"{occurred}",'
            f'"position":{int(position)},"prev_hash":{canonical.scalar(prev_hash)},'
            f'"recorded_at":"{recorded}","schema_version":{int(item.schema_version)},'
            f'"type":{canonical.scalar(item.type)}}}'
        )
        digest = canonical.sha256_hex((head + tail).encode("utf-8"))
        state = (head + f',"hash":"{digest}"' + tail).encode("utf-8")
    except (canonical.NotCanonicalError, UnicodeEncodeError) as exc:
        raise InvalidEventError(f"{item.type}: stored form is not canonical JSON: {exc}") from None
    stored = StoredEvent(
        originator_id=conversation_id, originator_version=position, topic=item.type, state=state
    )
    return Sealed(stored, item, digest, prev_hash, occurred, recorded)


def recorded(sealed: Sealed, sequence: int, codec: DataCodec) -> RecordedEvent:
    """The RecordedEvent that `decode` gives for a just-sealed event, built from what was
    sealed where it can be (no parse of the stored bytes, no decryption): for the in-process
    subscribers of an append. The payload is validated from the dict the stored form
    encodes, as `decode` validates the decoded one."""
    item = sealed.draft
    model = EVENT_TYPES.get(item.type)
    if model is None or item.schema_version != model.schema_version or not sealed.recorded_at:
        stored = sealed.stored
        return decode(
            str(stored.originator_id), stored.originator_version, sequence, stored.state, codec
        )
    return RecordedEvent(
        item.event_id,
        str(sealed.stored.originator_id),
        sealed.stored.originator_version,
        sequence,
        item.type,
        model.model_validate(item.data),
        datetime.fromisoformat(sealed.occurred_at),
        datetime.fromisoformat(sealed.recorded_at),
        item.leg_id,
        item.actor,
        item.schema_version,
        sealed.prev_hash,
        sealed.hash,
    )


def stored_hash(conversation_id: str, position: int, state: bytes) -> str:
    """The `hash` field of a stored event (to chain the next event onto)."""
    try:
        value = canonical.loads(state)["hash"]
        if not isinstance(value, str):
            raise TypeError("hash is not a string")
        return value
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityViolationError(
            conversation_id, position, f"unreadable record: {exc}"
        ) from None


# The payload of an event read with its data left undecoded (`decode(..., data=False)`).
UNDECODED = OpaqueData()


def decode(
    conversation_id: str,
    position: int,
    sequence: int,
    state: bytes,
    codec: DataCodec,
    *,
    data: bool = True,
) -> RecordedEvent:
    """Stored bytes → RecordedEvent, upcasting old payload versions. An unknown type is read
    as `OpaqueData`; anything unreadable is an IntegrityViolationError naming the position.
    `data=False`: the envelope only, its payload left stored (`UNDECODED`): not decrypted,
    not validated — for a reader that needs no field of this event's data."""
    try:
        # pydantic-core's parser: ~3x faster than json.loads on the replay path. Audit
        # verification parses with the stdlib (ledger.canonical), which defines the bytes.
        env = from_json(state, allow_inf_nan=False)
        event_type = env["type"]
        version = env["schema_version"]
        model = EVENT_TYPES.get(event_type)
        payload: EventData
        if not data:
            payload = UNDECODED
        elif model is None or version > model.schema_version:
            payload = OpaqueData.model_validate(
                codec.decode(conversation_id, event_type, env["data"])
            )
        else:
            payload = _payload(conversation_id, event_type, version, model, env["data"], codec)
            version = model.schema_version
        return RecordedEvent(  # positional: this is the hot path of every replay
            UUID(env["event_id"]),
            env["conversation_id"],
            env["position"],
            sequence,
            event_type,
            payload,
            datetime.fromisoformat(env["occurred_at"]),
            datetime.fromisoformat(env["recorded_at"]),
            env["leg_id"],
            env["actor"],
            version,
            env["prev_hash"],
            env["hash"],
        )
    except IntegrityViolationError:
        raise
    except Exception as exc:  # any malformed stored record, whatever the parser raised
        raise IntegrityViolationError(
            conversation_id, position, f"unreadable record: {type(exc).__name__}: {exc}"
        ) from None


def _payload(
    conversation_id: str,
    event_type: str,
    version: int,
    model: type[EventData],
    stored: Any,
    codec: DataCodec,
) -> EventData:
    data = codec.decode(conversation_id, event_type, stored)
    if version < model.schema_version:
        data = upcast(event_type, version, model.schema_version, data)
    return model.model_validate(data)
