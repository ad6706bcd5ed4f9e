"""The stored form: canonical JSON, sealing, the codec hook, decoding and upcasting."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from threadline.ledger import audit, canonical
from threadline.ledger.envelope import NewEvent
from threadline.ledger.errors import IntegrityViolationError, InvalidEventError
from threadline.ledger.events import MessagePosted
from threadline.ledger.records import decode, draft, seal
from threadline.ledger.store import open_ledger
from threadline.ledger.upcasting import upcast

NOW = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical.dumps({"b": 1, "a": ["é", None, 1.5]}) == '{"a":["é",null,1.5],"b":1}'.encode()
    for bad in ({"x": float("nan")}, {"x": float("inf")}, {1: 2, "a": 3}, {"x": "\ud800"}):
        with pytest.raises(canonical.NotCanonicalError):
            canonical.dumps(bad)
    with pytest.raises(ValueError, match="NaN"):
        canonical.loads(b'{"x": NaN}')


def test_seal_hashes_the_canonical_envelope_without_hash() -> None:
    item = draft("c1", NewEvent("MessagePosted", {"role": "agent", "text": "hi"}, leg_id="l1"))
    sealed = seal("c1", 1, canonical.GENESIS_HASH, item, NOW, _Identity())
    stored = canonical.loads(sealed.stored.state)
    assert canonical.dumps(stored) == sealed.stored.state
    assert stored["hash"] == sealed.hash
    body = {k: v for k, v in stored.items() if k != "hash"}
    assert canonical.sha256_hex(canonical.dumps(body)) == sealed.hash
    assert stored["recorded_at"] == stored["occurred_at"] == "2025-01-02T03:04:05.678901+00:00"
    assert sorted(stored) == sorted(
        [
            "event_id", "conversation_id", "position", "type", "schema_version", "occurred_at",
            "recorded_at", "leg_id", "actor", "data", "prev_hash", "hash",
        ]
    )  # fmt: skip
    event = decode("c1", 1, 7, sealed.stored.state, _Identity())
    assert (event.sequence, event.position, event.leg_id) == (7, 1, "l1")
    assert event.data == MessagePosted(role="agent", text="hi")


def test_digest_ignores_occurred_at_but_not_the_payload() -> None:
    base = NewEvent("MessagePosted", {"role": "agent", "text": "hi"})
    same = NewEvent("MessagePosted", {"role": "agent", "text": "hi"}, occurred_at=NOW)
    other = NewEvent("MessagePosted", {"role": "agent", "text": "ho"})
    assert draft("c1", base).digest == draft("c1", same).digest
    assert draft("c1", base).digest != draft("c1", other).digest
    assert draft("c1", base).digest != draft("c2", base).digest


def test_unreadable_or_unupcastable_records_are_integrity_violations() -> None:
    with pytest.raises(IntegrityViolationError) as info:
        decode("c1", 4, 1, b"{not json", _Identity())
    assert info.value.position == 4
    item = draft("c1", NewEvent("MessagePosted", {"role": "agent", "text": "hi"}))
    state = canonical.loads(
        seal("c1", 1, canonical.GENESIS_HASH, item, NOW, _Identity()).stored.state
    )
    state["schema_version"] = 0  # an old version nobody registered an upcaster for
    with pytest.raises(IntegrityViolationError, match="no upcaster"):
        decode("c1", 1, 1, canonical.dumps(state), _Identity())
    with pytest.raises(LookupError):
        upcast("MessagePosted", 0, 1, {})


def test_non_json_payload_values_are_rejected() -> None:
    with pytest.raises(InvalidEventError, match="NaN"):
        draft("c1", NewEvent("ToolResulted", {"call_id": "1", "result": [float("inf")]}))


class _Identity:
    def encode(self, conversation_id: str, event_type: str, data: dict[str, Any]) -> Any:
        return data

    def decode(self, conversation_id: str, event_type: str, stored: Any) -> dict[str, Any]:
        assert isinstance(stored, dict)
        return stored


class _Reversing:
    """Stands in for crypto-shredding: the stored form is not the payload; `forget` plays the
    destroyed key."""

    def __init__(self) -> None:
        self.forgotten = False

    def encode(self, conversation_id: str, event_type: str, data: dict[str, Any]) -> Any:
        return {"sealed": canonical.dumps(data).decode()[::-1]}

    def decode(self, conversation_id: str, event_type: str, stored: Any) -> dict[str, Any]:
        if self.forgotten:
            return (
                {"role": "system", "text": "[erased]"}
                if event_type == "MessagePosted"
                else {"channel": "chat"}
            )
        result: dict[str, Any] = canonical.loads(stored["sealed"][::-1])
        return result


def test_codec_hook_stores_and_hashes_the_encoded_form() -> None:
    codec = _Reversing()
    with open_ledger("memory://", codec=codec) as store:
        store.append("c1", NewEvent("ConversationStarted", {"channel": "chat"}))
        store.append("c1", NewEvent("MessagePosted", {"role": "visitor", "text": "my secret"}))
        (row,) = store.recorder.select_conversation("c1", gt=1)
        assert b"my secret" not in row.state
        assert store.read("c1")[1].data == MessagePosted(role="visitor", text="my secret")
        assert audit.verify_conversation(store, "c1") == 2
        codec.forgotten = True  # "erasure": the stored bytes are unchanged, the chain verifies
        assert store.read("c1")[1].data == MessagePosted(role="system", text="[erased]")
        assert audit.verify_conversation(store, "c1") == 2


@pytest.mark.parametrize(
    "text",
    ['quote " backslash \\ slash /', "tab\tnew\nline\x00\x1f\x7f", "é ü 中文 🎉 \u2028 \ufeff"],
)
def test_sealed_bytes_are_exactly_the_canonical_form(text: str) -> None:
    event = NewEvent(
        "ToolCalled",
        {"call_id": "c", "name": text, "arguments": {text: [text, 1.5, -0.0, 10**30, None]}},
        leg_id='leg "1"',
        actor="agent é",
        occurred_at=datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),
    )
    sealed = seal("c1", 12, "f" * 64, draft("c1", event), NOW, _Identity())
    assert canonical.dumps(canonical.loads(sealed.stored.state)) == sealed.stored.state
    body = canonical.loads(sealed.stored.state)
    assert body.pop("hash") == sealed.hash == canonical.sha256_hex(canonical.dumps(body))
    assert decode("c1", 12, 1, sealed.stored.state, _Identity()).data.model_dump(mode="json") == (
        draft("c1", event).data
    )


@pytest.mark.parametrize("encrypted", [False, True])
def test_the_recorded_event_built_from_a_seal_equals_its_decoding(encrypted: bool) -> None:
    # What in-process subscribers get after an append (`records.recorded`) is what a read
    # of the stored bytes gives, for every event type with a sample payload.
    from datetime import timedelta, timezone

    from tests.unit.test_privacy_codec import SAMPLES
    from threadline.ledger.events import EVENT_TYPES
    from threadline.ledger.keyring import MemoryKeyTable
    from threadline.ledger.masterkey import MasterKey
    from threadline.ledger.records import recorded
    from threadline.ledger.shredding import ShreddingCodec

    codec = (
        ShreddingCodec(MemoryKeyTable(), MasterKey(b"m" * 32, "test")) if encrypted else _Identity()
    )
    elsewhere = datetime(2025, 1, 1, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
    known = sorted((t, d) for t, d in SAMPLES.items() if t in EVENT_TYPES)
    assert len(known) >= 10
    for n, (event_type, data) in enumerate(known, start=2):
        occurred = elsewhere if n % 2 else None
        item = draft("c1", NewEvent(event_type, data, leg_id="l1", actor="a", occurred_at=occurred))
        sealed = seal("c1", n, canonical.GENESIS_HASH, item, NOW, codec)
        read = decode("c1", n, 40 + n, sealed.stored.state, codec)
        assert recorded(sealed, 40 + n, codec) == read, event_type
