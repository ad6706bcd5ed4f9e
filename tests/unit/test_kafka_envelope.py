"""The topic record format: round trip, headers, and bad records."""

from __future__ import annotations

import json

import pytest

from threadline.ledger.envelope import NewEvent
from threadline.ledger.events import OpaqueData
from threadline.ledger.store import open_ledger
from threadline.streaming.envelope import ENVELOPE_VERSION, decode, encode
from threadline.streaming.errors import BadMessageError


def recorded():  # type: ignore[no-untyped-def]
    ledger = open_ledger("memory://")
    ledger.append("conv-1", NewEvent("ConversationStarted", {"channel": "chat"}))
    ledger.append(
        "conv-1", NewEvent("MessagePosted", {"role": "visitor", "text": "héllo"}, leg_id="l1")
    )
    return ledger.read_all()


def test_round_trip_keeps_every_envelope_field() -> None:
    for event in recorded():
        m = encode(event)
        assert m.key == b"conv-1"
        headers = dict(m.headers)
        assert headers["type"] == event.type.encode()
        assert headers["event_id"] == str(event.event_id).encode()
        assert headers["sequence"] == str(event.sequence).encode()
        doc = json.loads(m.value)
        assert doc["envelope_version"] == ENVELOPE_VERSION
        assert doc["schema_version"] == event.schema_version
        assert decode(m.value) == event


def test_unknown_type_or_newer_payload_version_is_opaque_not_an_error() -> None:
    doc = json.loads(encode(recorded()[1]).value)
    doc["type"] = "SomethingNew"
    assert isinstance(decode(json.dumps(doc).encode()).data, OpaqueData)
    doc["type"], doc["schema_version"] = "MessagePosted", 99
    assert isinstance(decode(json.dumps(doc).encode()).data, OpaqueData)


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"not json",
        b"[]",
        b'{"event_id": "x"}',
        b'{"envelope_version": 2}',
    ],
)
def test_bad_records_raise_one_error_type(value: bytes | None) -> None:
    with pytest.raises(BadMessageError):
        decode(value)


def test_negative_position_is_rejected() -> None:
    doc = json.loads(encode(recorded()[0]).value)
    doc["position"] = -1
    with pytest.raises(BadMessageError):
        decode(json.dumps(doc).encode())
