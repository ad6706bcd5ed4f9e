"""Crypto-shredding codec on the in-memory key table: the policy, the stored form, erased
markers, authentication of blobs, key caching and the master key sources."""

from __future__ import annotations

import base64
import os
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadline.agent import events as agent_events
from threadline.channels.email import events as email_events
from threadline.channels.messaging import events as messaging_events
from threadline.ledger import canonical, privacy
from threadline.ledger.errors import StoreUnavailableError
from threadline.ledger.events import EVENT_TYPES, parse_data
from threadline.ledger.keyring import MemoryKeyTable
from threadline.ledger.masterkey import MasterKey, create_key_file, read_key_file
from threadline.ledger.shredding import SEALED, ShreddingCodec

# Every personal field present and non-null, values that are easy to look for.
SAMPLES: dict[str, dict[str, Any]] = {
    "ConversationStarted": {"channel": "sms", "visitor_ref": "tel:+15551230001"},
    "LegOpened": {"channel": "pstn", "transport_ref": "tel:+15551230001;call-id=abc"},
    "MessagePosted": {"role": "visitor", "text": "my card is 4111 1111"},
    "UtteranceTranscribed": {
        "role": "visitor",
        "text": "I live at 1 Elm Street",
        "start_ms": 0,
        "end_ms": 900,
        "confidence": 0.8,
    },
    "AgentSpoke": {"text": "Hello Jane Doe", "interrupted": True, "spoken_text": "Hello Ja"},
    "IdentityClaimed": {"method": "kba", "subject": "member:M-1001"},
    "IdentityVerified": {"method": "otp", "level": 2, "subject": "member:M-1001"},
    "ToolCalled": {"call_id": "t1", "name": "lookup", "arguments": {"dob": "1980-02-03"}},
    "ToolResulted": {"call_id": "t1", "result": {"balance": 12}, "error": "member M-1001 late"},
    "EscalationSignalDetected": {
        "signal": "frustration_spike",
        "score": 0.9,
        "evidence": "this is the third time, Jane Doe here",
    },
    "HandoffCompleted": {"handoff_id": "h1", "leg_id": "l2", "first_utterance": "Hi Jane Doe"},
    "CSATRecorded": {"score": 2, "comment": "call me on 555 0101"},
    "EmailReceived": {
        "message_id": "<m1@example.com>",
        "sender": "ann@example.com",
        "subject": "About my January claim",
        "attachments": [{"name": "claim-4411.pdf", "content_type": "application/pdf", "size": 9}],
    },
    "EmailSent": {"message_id": "<r1@t.test>", "to": "ann@example.com", "subject": "Re: claim"},
    "HandoffSummaryWritten": {
        "text": "Jane Doe wants order 4417 sent to 1 Elm St",
        "generator": "offline",
    },
    "EmailDeliveryFailed": {
        "message_id": "<r1@t.test>",
        "to": "ann@example.com",
        "error": "550 no such user ann@example.com",
    },
}
CID = "conv-1"


def codec(table: MemoryKeyTable | None = None, **kw: Any) -> ShreddingCodec:
    return ShreddingCodec(table or MemoryKeyTable(), MasterKey(b"m" * 32, "test"), **kw)


CODEC = codec()  # shared by hypothesis examples (keys cached across them, like a process)


def normalised(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return parse_data(event_type, data).model_dump(mode="json")


@pytest.fixture(autouse=True)
def outer_event_types() -> None:
    """The samples include outer packages' types: register them as the bootstrap does."""
    agent_events.register_events()
    messaging_events.register_events()
    email_events.register_events()


def test_every_registered_event_type_has_a_declared_policy() -> None:
    assert set(EVENT_TYPES) <= privacy.declared()


def test_samples_cover_every_type_with_personal_fields() -> None:
    personal = {t for t in privacy.declared() if privacy.policy_for(t).personal}  # type: ignore[union-attr]
    assert personal == set(SAMPLES)


def test_redeclaring_a_policy_differently_is_an_error() -> None:
    privacy.declare("MessagePosted", ["text"])  # the same: fine
    with pytest.raises(ValueError, match="already declared"):
        privacy.declare("MessagePosted", ["text", "role"])
    with pytest.raises(ValueError, match="non-personal"):
        privacy.declare("SomethingNew", ["a"], markers={"b": 1})


def test_identifier_terms_include_the_bare_form() -> None:
    assert privacy.identifier_terms("tel:+1555;call-id=x") == {"tel:+1555;call-id=x", "+1555"}
    assert privacy.identifier_terms("+1555") == {"+1555"}
    assert privacy.identifier_terms("sms:+1555") == {"sms:+1555", "+1555"}
    assert privacy.identifier_terms("tel:") == {"tel:"}


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_personal_fields_are_stored_encrypted_and_read_back(event_type: str) -> None:
    c = codec()
    data = normalised(event_type, SAMPLES[event_type])
    stored = c.encode(CID, event_type, data)
    policy = privacy.policy_for(event_type)
    assert policy is not None
    raw = canonical.dumps(stored)
    for name in policy.personal:
        assert name not in stored
        assert canonical.dumps(data[name])[1:-1] not in raw  # no plaintext, quoted or not
    assert sorted(stored[SEALED]["f"]) == sorted(policy.personal)
    assert {k: v for k, v in stored.items() if k != SEALED} == {
        k: v for k, v in data.items() if k not in policy.personal
    }
    assert c.decode(CID, event_type, stored) == data


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_a_destroyed_key_reads_as_markers_that_still_validate(event_type: str) -> None:
    table = MemoryKeyTable()
    c = codec(table)
    stored = c.encode(CID, event_type, normalised(event_type, SAMPLES[event_type]))
    key = table.active_key(CID)
    assert key is not None
    assert table.destroy(key.key_id, datetime.now(UTC))
    fresh = codec(table)  # another process: nothing cached
    for reader in (fresh, c):
        c.forget(CID, key.key_id)
        data = reader.decode(CID, event_type, stored)
        payload = EVENT_TYPES[event_type].model_validate(data)  # the projections can read it
        policy = privacy.policy_for(event_type)
        assert policy is not None
        for name in policy.personal:
            assert data[name] == policy.marker(name)
        assert payload is not None


def test_payloads_without_personal_values_are_stored_as_is() -> None:
    c = codec()
    for event_type, data in [
        ("ConversationStarted", {"channel": "chat", "tenant": "default", "visitor_ref": None}),
        ("HandoffOffered", {"handoff_id": "h1", "channel": "webrtc", "reason": None}),
        ("SubjectErased", {"subject": "hmac:00", "reason": None}),
    ]:
        assert c.encode(CID, event_type, data) is data


def test_blobs_are_bound_to_conversation_type_and_fields() -> None:
    table = MemoryKeyTable()
    c = codec(table)
    stored = c.encode(CID, "MessagePosted", {"role": "visitor", "text": "secret"})
    with pytest.raises(ValueError, match="authenticate"):  # key cached: the blob's binding
        c.decode("conv-2", "MessagePosted", stored)
    with pytest.raises(ValueError, match="another conversation"):  # from the key table
        codec(table).decode("conv-2", "MessagePosted", stored)
    with pytest.raises(ValueError, match="authenticate"):
        c.decode(CID, "AgentSpoke", stored)
    moved = {**stored, SEALED: {**stored[SEALED], "f": ["reason"]}}
    with pytest.raises(ValueError, match="authenticate"):
        c.decode(CID, "MessagePosted", moved)
    blob = bytearray(base64.b64decode(stored[SEALED]["c"]))
    blob[-1] ^= 1
    flipped = {**stored, SEALED: {**stored[SEALED], "c": base64.b64encode(blob).decode()}}
    with pytest.raises(ValueError, match="authenticate"):
        c.decode(CID, "MessagePosted", flipped)
    for bad in ({"k": "x"}, "x", {"k": 1, "f": [], "c": ""}, {"k": "x", "f": [], "c": "%%"}):
        with pytest.raises(ValueError, match="malformed"):
            c.decode(CID, "MessagePosted", {"role": "visitor", SEALED: bad})


def test_an_unknown_key_or_a_missing_master_key_is_an_error_not_an_erasure() -> None:
    stored = codec().encode(CID, "MessagePosted", {"role": "visitor", "text": "secret"})
    with pytest.raises(ValueError, match="not in the key table"):
        codec().decode(CID, "MessagePosted", stored)  # another key table
    clear = ShreddingCodec(None, None, encrypt=False)
    assert clear.encode(CID, "MessagePosted", {"role": "visitor", "text": "x"})["text"] == "x"
    with pytest.raises(ValueError, match="no master key"):
        clear.decode(CID, "MessagePosted", stored)
    with pytest.raises(ValueError, match="needs a key table"):
        ShreddingCodec(None, None)


def test_another_master_key_cannot_unwrap() -> None:
    table = MemoryKeyTable()
    stored = codec(table).encode(CID, "MessagePosted", {"role": "visitor", "text": "secret"})
    other = ShreddingCodec(table, MasterKey(b"o" * 32, "other"))
    with pytest.raises(ValueError, match="wrapped by master key"):
        other.decode(CID, "MessagePosted", stored)


def test_one_key_per_conversation_and_subject_links() -> None:
    table = MemoryKeyTable()
    c = codec(table)
    c.encode(CID, "ConversationStarted", {"channel": "sms", "visitor_ref": "tel:+1555"})
    c.encode(CID, "MessagePosted", {"role": "visitor", "text": "a"})
    c.encode("conv-2", "IdentityVerified", {"method": "otp", "level": 1, "subject": "+1555"})
    c.encode("conv-3", "MessagePosted", {"role": "visitor", "text": "b"})
    keys = {table.active_key(x).key_id for x in (CID, "conv-2", "conv-3")}  # type: ignore[union-attr]
    assert len(keys) == 3
    assert table.conversations(c.blinds("+1555")) == [CID, "conv-2"]
    assert table.conversations(c.blinds("tel:+1555")) == [CID, "conv-2"]
    assert table.conversations(c.blinds("+1666")) == []
    assert c.subject_ref("+1555").startswith("hmac:")
    assert "1555" not in c.subject_ref("+1555")


def test_other_processes_see_an_erasure_within_the_cache_ttl() -> None:
    now = [0.0]
    table = MemoryKeyTable()
    writer = codec(table, ttl_s=30, clock=lambda: now[0])
    reader = codec(table, ttl_s=30, clock=lambda: now[0])
    stored = writer.encode(CID, "MessagePosted", {"role": "visitor", "text": "secret"})
    assert reader.decode(CID, "MessagePosted", stored)["text"] == "secret"
    key = table.active_key(CID)
    assert key is not None
    table.destroy(key.key_id, datetime.now(UTC))  # by a third process
    now[0] = 31.0
    assert reader.decode(CID, "MessagePosted", stored)["text"] == privacy.ERASED
    # The writer's cached key has expired too: new data gets a new key, readable by all.
    again = writer.encode(CID, "MessagePosted", {"role": "visitor", "text": "after"})
    assert again[SEALED]["k"] != key.key_id
    assert reader.decode(CID, "MessagePosted", again)["text"] == "after"


def test_concurrent_first_use_agrees_on_one_key() -> None:
    table = MemoryKeyTable()
    codecs = [codec(table) for _ in range(8)]
    barrier = threading.Barrier(len(codecs))
    stored: list[Any] = []

    def run(c: ShreddingCodec) -> None:
        barrier.wait()
        stored.append(c.encode(CID, "MessagePosted", {"role": "visitor", "text": "x"}))

    threads = [threading.Thread(target=run, args=(c,)) for c in codecs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({s[SEALED]["k"] for s in stored}) == 1


@given(
    text=st.text(min_size=1, max_size=200).filter(lambda t: "\x00" not in t),
    arguments=st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.one_of(st.integers(), st.text(max_size=20), st.booleans(), st.none()),
        max_size=4,
    ),
)
def test_any_payload_round_trips(text: str, arguments: dict[str, Any]) -> None:
    c = CODEC
    cases: list[tuple[str, dict[str, Any]]] = [
        ("MessagePosted", {"role": "visitor", "text": text}),
        ("ToolCalled", {"call_id": "t", "name": "n", "arguments": arguments}),
    ]
    for event_type, raw in cases:
        data = normalised(event_type, raw)
        stored = canonical.loads(canonical.dumps(c.encode(CID, event_type, data)))
        assert c.decode(CID, event_type, stored) == data


# -- master keys ---------------------------------------------------------------------------


def test_master_key_material_is_checked_and_never_shown() -> None:
    with pytest.raises(StoreUnavailableError, match="≥ 32"):
        MasterKey(b"short", "THREADLINE_MASTER_KEY")
    key = MasterKey(b"s" * 40, "THREADLINE_MASTER_KEY")
    assert "sss" not in repr(key)
    assert (
        key.master_id == MasterKey(b"s" * 40, "x").master_id != MasterKey(b"t" * 40, "x").master_id
    )


def test_key_file_is_private_and_racing_creators_share_one_key(tmp_path: Path) -> None:
    path = tmp_path / "db.key"
    ids: list[str] = []
    barrier = threading.Barrier(6)

    def create() -> None:
        barrier.wait()
        ids.append(create_key_file(path).master_id)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read_key_file(path).master_id == ids[0]
    assert [p.name for p in tmp_path.iterdir()] == ["db.key"]  # no temp files left
    with pytest.raises(StoreUnavailableError, match="no such directory"):
        create_key_file(tmp_path / "missing" / "db.key")
    (tmp_path / "short.key").write_text("abc\n")
    with pytest.raises(StoreUnavailableError, match="≥ 32"):
        read_key_file(tmp_path / "short.key")
