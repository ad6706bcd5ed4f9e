"""The record a Threadline event becomes on the topic (documented in docs/scaling.md).

- key: the conversation id (UTF-8), so all events of one conversation land on one partition
  in order;
- value: the event envelope as compact JSON — `RecordedEvent.to_json()` plus
  `"envelope_version"` (the format of this wrapper; `schema_version` is the payload's).
  Version 2: `data` is the payload as the ledger stores it, personal fields sealed
  (`"_pii": {"k": key id, "f": fields, "c": ciphertext}`; `threadline.streaming.sealed`).
  Version 1 (read, no longer written): `data` in clear;
- headers: `type`, `event_id`, `conversation_id`, `sequence`, `content-type`, so routers and
  filters need not parse the value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from threadline.ledger.codec import DataCodec, IdentityCodec
from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.events import EVENT_TYPES, EventData, OpaqueData
from threadline.ledger.upcasting import upcast
from threadline.streaming.errors import BadMessageError

ENVELOPE_VERSION = 2
CONTENT_TYPE = b"application/vnd.threadline.event+json;v=2"
_CLEAR = IdentityCodec()


@dataclass(frozen=True, slots=True)
class Message:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def encode(event: RecordedEvent) -> Message:
    doc = event.to_json()
    doc["envelope_version"] = ENVELOPE_VERSION
    return Message(
        key=event.conversation_id.encode(),
        value=json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode(),
        headers=[
            ("type", event.type.encode()),
            ("event_id", str(event.event_id).encode()),
            ("conversation_id", event.conversation_id.encode()),
            ("sequence", str(event.sequence).encode()),
            ("content-type", CONTENT_TYPE),
        ],
    )


def decode(
    value: bytes | None,
    *,
    codec: DataCodec | None = None,
    on_sealed: Callable[[str, dict[str, Any]], None] | None = None,
) -> RecordedEvent:
    """The envelope back as a RecordedEvent. A payload type this process does not know (or a
    newer version of it) becomes `OpaqueData`, as in the ledger: readers skip it. `codec`
    opens the stored form of a version-2 record (`threadline.streaming.sealed.StreamDecoder`
    chooses it); without one, a record with sealed fields keeps them as OpaqueData."""
    if value is None:
        raise BadMessageError("empty record value")
    try:
        doc = json.loads(value)
        if not isinstance(doc, dict):
            raise TypeError("not an object")
        version = int(doc.get("envelope_version", 0))
        if version > ENVELOPE_VERSION:
            raise BadMessageError(f"envelope_version {doc['envelope_version']} is newer than this")
        cid = _text(doc["conversation_id"])
        data = doc["data"]
        if version >= 2 and isinstance(data, dict):
            if on_sealed is not None:
                on_sealed(cid, data)
            if codec is not None or "_pii" not in data:
                data = (codec or _CLEAR).decode(cid, _text(doc["type"]), data)
            else:
                data = dict(data)
        return RecordedEvent(
            UUID(doc["event_id"]),
            cid,
            _int(doc["position"]),
            _int(doc["sequence"]),
            _text(doc["type"]),
            _payload(doc["type"], _int(doc["schema_version"]), data, sealed="_pii" in data),
            datetime.fromisoformat(doc["occurred_at"]),
            datetime.fromisoformat(doc["recorded_at"]),
            doc.get("leg_id"),
            doc.get("actor"),
            _int(doc["schema_version"]),
            _text(doc["prev_hash"]),
            _text(doc["hash"]),
        )
    except BadMessageError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        # Whatever the parsers (and the codec, for a blob that does not authenticate) raise
        # for a bad record. Anything else — the keyring's database down — is not the
        # record's fault and propagates, so the consumer retries instead of skipping it.
        raise BadMessageError(
            f"not a Threadline event envelope: {type(exc).__name__}: {exc}"
        ) from None


def _payload(event_type: str, version: int, data: Any, *, sealed: bool = False) -> EventData:
    if not isinstance(data, dict):
        raise TypeError("data is not an object")
    model = EVENT_TYPES.get(event_type)
    if sealed or model is None or version > model.schema_version:
        return OpaqueData.model_validate(data)
    if version < model.schema_version:
        data = upcast(event_type, version, model.schema_version, data)
    return model.model_validate(data)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"{value!r} is not a non-negative integer")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{value!r} is not a non-empty string")
    return value
