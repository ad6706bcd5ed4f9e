"""Crypto-shredding end to end on every backend (memory, SQLite file, PostgreSQL): personal
data is encrypted at rest, `erase` shreds exactly the subject's conversations, the chain
still verifies, exports hold no plaintext, and erasure is idempotent and crash-safe."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.ledgers import BACKENDS, ledger_url, open_configured
from threadline.ledger import audit, privacy
from threadline.ledger.envelope import NewEvent, RecordedEvent
from threadline.ledger.erasure import erase_subject
from threadline.ledger.events import MessagePosted
from threadline.ledger.keyring import ERASED_DIGEST
from threadline.ledger.shredding import ShreddingCodec
from threadline.ledger.store import Ledger
from threadline.projections.context import build_context
from threadline.projections.transcript import build_transcript, render_text


class Person:
    """A data subject with identifiers and texts that are unique to this test run."""

    def __init__(self, name: str) -> None:
        tag = secrets.token_hex(6)
        self.phone = f"+1555{secrets.randbelow(10**7):07d}"
        self.member = f"member:{name}-{tag}"
        self.visitor = f"visitor:{name}-{tag}"
        self.text = f"my secret is {name}-{tag}-text"
        self.tool_arg = f"dob-{tag}"

    def plaintexts(self) -> list[bytes]:
        return [
            s.encode() for s in (self.phone, self.member, self.visitor, self.text, self.tool_arg)
        ]


def chat(ledger: Ledger, cid: str, p: Person) -> None:
    ledger.append_batch(
        cid,
        [
            NewEvent("ConversationStarted", {"channel": "sms", "visitor_ref": f"tel:{p.phone}"}),
            NewEvent(
                "LegOpened", {"channel": "sms", "transport_ref": f"sms:{p.phone}"}, leg_id="l1"
            ),
            NewEvent("MessagePosted", {"role": "visitor", "text": p.text}, leg_id="l1"),
            NewEvent("IdentityVerified", {"method": "otp", "level": 2, "subject": p.member}),
            NewEvent(
                "ToolCalled",
                {"call_id": "t1", "name": "lookup", "arguments": {"dob": p.tool_arg}},
            ),
            NewEvent("ToolResulted", {"call_id": "t1", "result": {"member": p.member}}),
            NewEvent("AgentSpoke", {"text": f"Thanks, {p.member}"}, leg_id="l1"),
        ],
    )


def call(ledger: Ledger, cid: str, p: Person) -> None:
    """A second conversation linked to the person only by the caller's number."""
    ledger.append_batch(
        cid,
        [
            NewEvent("ConversationStarted", {"channel": "pstn"}),
            NewEvent(
                "LegOpened",
                {"channel": "pstn", "transport_ref": f"tel:{p.phone};call-id={uuid4().hex}"},
                leg_id="v1",
            ),
            NewEvent(
                "UtteranceTranscribed",
                {"role": "visitor", "text": p.text, "start_ms": 0, "end_ms": 1, "confidence": 1},
                leg_id="v1",
            ),
        ],
    )


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("THREADLINE_MASTER_KEY", secrets.token_urlsafe(32))
    monkeypatch.setenv("THREADLINE_PRIVACY", "on")
    return ledger_url(request.param, tmp_path, request)


@pytest.fixture(params=[b for b in BACKENDS if b.values != ("memory",)])
def durable_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Backends that several Ledger objects (processes) can share."""
    monkeypatch.setenv("THREADLINE_MASTER_KEY", secrets.token_urlsafe(32))
    monkeypatch.setenv("THREADLINE_PRIVACY", "on")
    return ledger_url(request.param, tmp_path, request)


@pytest.fixture
def store(url: str) -> Iterator[Ledger]:
    with open_configured(url) as ledger:
        yield ledger


def raw_bytes(store: Ledger, url: str, request: pytest.FixtureRequest) -> bytes:
    """Everything the database holds, as bytes on disk where there is a disk."""
    if url == "memory://":
        recorder: Any = store.recorder
        return b"\n".join(bytes(s.state) for s in recorder._stored_events)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        return b"".join(
            p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name)
        )
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    cluster = request.getfixturevalue("postgres_cluster")
    return b"".join(p.read_bytes() for p in cluster.data_dir.rglob("*") if p.is_file())


def active_wrapped(store: Ledger, cid: str) -> bytes:
    codec = store.codec
    assert isinstance(codec, ShreddingCodec)
    assert codec.table is not None
    key = codec.table.active_key(cid)
    assert key is not None
    assert key.wrapped is not None
    return key.wrapped


def texts(events: list[RecordedEvent]) -> str:
    return "\n".join(str(e.to_json()["data"]) for e in events)


# -- encryption at rest ------------------------------------------------------------------


def test_personal_data_is_not_stored_in_clear(
    store: Ledger, url: str, request: pytest.FixtureRequest
) -> None:
    alice = Person("alice")
    chat(store, "c-alice", alice)
    call(store, "c-alice-call", alice)
    assert alice.text in texts(store.read("c-alice"))  # readable through the ledger
    data = raw_bytes(store, url, request)
    assert b"_pii" in data  # the scan does see the stored events
    for plaintext in alice.plaintexts():
        assert plaintext not in data, plaintext


# -- erasure ---------------------------------------------------------------------------


def test_erase_shreds_the_subjects_conversations_and_nothing_else(
    store: Ledger, url: str, request: pytest.FixtureRequest
) -> None:
    alice, bob = Person("alice"), Person("bob")
    chat(store, "c-alice", alice)
    call(store, "c-alice-call", alice)
    chat(store, "c-bob", bob)
    before = {c: store.read(c) for c in ("c-alice", "c-alice-call", "c-bob")}
    wrapped = {c: active_wrapped(store, c) for c in before}

    report = erase_subject(store, alice.phone, reason="ticket-42")

    assert report.erased == ["c-alice", "c-alice-call"]
    assert report.already_erased == []
    for cid in ("c-alice", "c-alice-call"):
        events = store.read(cid)
        assert len(events) == len(before[cid]) + 1
        # Same events, same hashes: only the reading of personal fields changed.
        assert [e.hash for e in events[:-1]] == [e.hash for e in before[cid]]
        erased = events[-1]
        assert erased.type == "SubjectErased"
        assert erased.actor == "system:erasure"
        assert erased.data.model_dump() == {"subject": report.subject_ref, "reason": "ticket-42"}
        for plaintext in alice.plaintexts():
            assert plaintext.decode() not in texts(events)
        assert privacy.ERASED in texts(events)
        assert audit.verify_conversation(store, cid) == len(events)
        exported = "\n".join(audit.export_lines(store, cid))
        assert audit.verify_lines(exported.splitlines()).events == len(events)
        for plaintext in alice.plaintexts():
            assert plaintext.decode() not in exported
    assert store.read("c-bob") == before["c-bob"]
    assert bob.text in texts(store.read("c-bob"))
    assert audit.verify_all(store).events == sum(len(v) for v in before.values()) + 2

    # Projections still fold the erased conversation; its text reads as erased.
    transcript = build_transcript(store.read("c-alice"))
    assert privacy.ERASED in render_text(transcript)
    assert alice.text not in render_text(transcript)
    context = build_context(store.read("c-alice"))
    assert alice.member not in context.model_dump_json()

    # The wrapped data keys are gone from the disk too (SQLite: secure_delete + WAL truncate).
    if url.startswith("sqlite"):
        data = raw_bytes(store, url, request)
        assert wrapped["c-bob"] in data  # the scan does see keys
        assert wrapped["c-alice"] not in data
        assert wrapped["c-alice-call"] not in data


def test_erase_is_idempotent_and_a_continued_conversation_gets_a_new_key(
    store: Ledger,
) -> None:
    alice = Person("alice")
    chat(store, "c-alice", alice)
    first = erase_subject(store, alice.member)
    assert first.erased == ["c-alice"]
    length = store.version("c-alice")

    again = erase_subject(store, alice.member)
    assert (again.erased, again.already_erased) == ([], ["c-alice"])
    assert again.subject_ref == first.subject_ref
    assert store.version("c-alice") == length  # nothing appended

    # The conversation goes on: new personal data is readable, under a new key...
    store.append("c-alice", NewEvent("MessagePosted", {"role": "visitor", "text": "later"}))
    assert store.read("c-alice", after=length)[0].data == MessagePosted(
        role="visitor", text="later"
    )
    # ...and erasing the subject again shreds it as well.
    third = erase_subject(store, alice.member)
    assert third.erased == ["c-alice"]
    tail = store.read("c-alice", after=length)
    assert [e.type for e in tail] == ["MessagePosted", "SubjectErased"]
    assert tail[0].data == MessagePosted(role="visitor", text=privacy.ERASED)
    assert audit.verify_conversation(store, "c-alice") == length + 2


def test_nothing_to_erase_for_an_unknown_subject(store: Ledger) -> None:
    chat(store, "c-alice", Person("alice"))
    report = erase_subject(store, "+10000000000")
    assert (report.erased, report.already_erased) == ([], [])
    assert store.version("c-alice") == 7


def test_an_interrupted_erasure_completes_on_retry_without_a_second_record(
    store: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = Person("alice")
    chat(store, "c-alice", alice)
    codec = store.codec
    assert isinstance(codec, ShreddingCodec)
    table: Any = codec.table

    def crash(*args: Any) -> bool:
        raise RuntimeError("killed between the record and the key destruction")

    with monkeypatch.context() as m:
        m.setattr(table, "destroy", crash)
        with pytest.raises(RuntimeError):
            erase_subject(store, alice.phone, reason="first try")
    assert store.read("c-alice")[-1].type == "SubjectErased"
    assert alice.text in texts(store.read("c-alice"))  # key not destroyed yet

    report = erase_subject(store, alice.phone, reason="second try")
    assert report.erased == ["c-alice"]
    events = store.read("c-alice")
    assert [e.type for e in events].count("SubjectErased") == 1
    assert alice.text not in texts(events)


def test_a_retried_append_of_an_erased_event_is_a_duplicate(store: Ledger) -> None:
    alice = Person("alice")
    chat(store, "c-alice", alice)
    event = NewEvent("MessagePosted", {"role": "visitor", "text": alice.text})
    first = store.append("c-alice", event)
    erase_subject(store, alice.phone)
    ids: Any = store.recorder.lookup_event_ids([str(event.event_id)])
    assert ids[str(event.event_id)].digest == ERASED_DIGEST  # no hash of the plaintext left
    retry = store.append("c-alice", event)
    assert retry.duplicate
    assert retry.position == first.position


def test_other_processes_see_the_erasure(durable_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = durable_url
    monkeypatch.setenv("THREADLINE_KEY_CACHE_TTL_S", "0")
    alice = Person("alice")
    with open_configured(url) as reader, open_configured(url) as eraser:
        chat(reader, "c-alice", alice)
        assert alice.text in texts(reader.read("c-alice"))
        erase_subject(eraser, f"tel:{alice.phone}")
        assert alice.text not in texts(reader.read("c-alice"))
        assert privacy.ERASED in texts(reader.read("c-alice"))


def test_concurrent_first_appends_agree_on_one_key(durable_url: str) -> None:
    url = durable_url
    ledgers = [open_configured(url) for _ in range(4)]
    try:
        ledgers[0].append("c1", NewEvent("ConversationStarted", {"channel": "chat"}))
        barrier = threading.Barrier(len(ledgers))

        def run(ledger: Ledger, i: int) -> None:
            barrier.wait()
            ledger.append("c1", NewEvent("MessagePosted", {"role": "visitor", "text": f"m{i}"}))

        threads = [threading.Thread(target=run, args=(lg, i)) for i, lg in enumerate(ledgers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stored = ledgers[0].recorder.select_conversation("c1", gt=1)
        assert len({s.state.split(b'"k":"')[1][:32] for s in stored}) == 1
        with open_configured(url) as fresh:
            assert sorted(e.data.text for e in fresh.read("c1")[1:]) == [  # type: ignore[attr-defined]
                "m0",
                "m1",
                "m2",
                "m3",
            ]
    finally:
        for lg in ledgers:
            lg.close()


# -- property ----------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    owners=st.lists(
        st.sets(st.sampled_from(["s0", "s1", "s2", "s3"]), min_size=1, max_size=2),
        min_size=1,
        max_size=6,
    ),
    victim=st.sampled_from(["s0", "s1", "s2", "s3"]),
)
def test_erasure_shreds_exactly_the_conversations_linked_to_the_subject(
    owners: list[set[str]], victim: str
) -> None:
    with open_configured("memory://") as store:
        for i, subjects in enumerate(owners):
            cid = f"c{i}"
            store.append(cid, NewEvent("ConversationStarted", {"channel": "chat"}))
            for s in sorted(subjects):
                store.append(
                    cid, NewEvent("IdentityClaimed", {"method": "kba", "subject": f"id:{s}"})
                )
            store.append(cid, NewEvent("MessagePosted", {"role": "visitor", "text": f"t{i}"}))
        report = erase_subject(store, victim)
        expected = [f"c{i}" for i, subjects in enumerate(owners) if victim in subjects]
        assert sorted(report.erased) == sorted(expected)
        for i in range(len(owners)):
            cid = f"c{i}"
            message = next(e for e in store.read(cid) if e.type == "MessagePosted")
            assert message.data.text == (  # type: ignore[attr-defined]
                privacy.ERASED if cid in expected else f"t{i}"
            )
        assert audit.verify_all(store).conversations == len(owners)


# -- tampering with encrypted records ------------------------------------------------------


def test_tampering_with_an_encrypted_field_is_detected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from threadline.ledger import canonical
    from threadline.ledger.errors import IntegrityViolationError

    monkeypatch.setenv("THREADLINE_MASTER_KEY", secrets.token_urlsafe(32))
    url = f"sqlite:///{tmp_path / 't.db'}"
    alice = Person("alice")
    with open_configured(url) as store:
        chat(store, "c-alice", alice)

    def edit(position: int, rehash: bool) -> None:
        con = sqlite3.connect(tmp_path / "t.db")
        try:
            (state,) = con.execute(
                "SELECT state FROM stored_events WHERE originator_id=? AND originator_version=?",
                ("c-alice", position),
            ).fetchone()
            body = canonical.loads(state)
            blob = body["data"]["_pii"]["c"]
            body["data"]["_pii"]["c"] = ("A" if blob[0] != "A" else "B") + blob[1:]
            if rehash:  # a careful forger also recomputes this record's own hash
                del body["hash"]
                body["hash"] = canonical.sha256_hex(canonical.dumps(body))
            con.execute(
                "UPDATE stored_events SET state=? WHERE originator_id=? AND originator_version=?",
                (canonical.dumps(body), "c-alice", position),
            )
            con.commit()
        finally:
            con.close()

    edit(7, rehash=True)  # the last event: no successor's prev_hash to betray it...
    with open_configured(url) as store:
        assert audit.verify_conversation(store, "c-alice") == 7
        with pytest.raises(IntegrityViolationError) as info:  # ...but the ciphertext does
            store.read("c-alice")
        assert (info.value.position, "authenticate" in info.value.reason) == (7, True)
    edit(3, rehash=False)
    with open_configured(url) as store, pytest.raises(IntegrityViolationError) as info:
        audit.verify_conversation(store, "c-alice")
    assert (info.value.position, "hash does not match" in info.value.reason) == (3, True)


def test_resending_an_erased_event_makes_no_new_key_and_erasing_again_adds_nothing(
    store: Ledger,
) -> None:
    """Issue 17, class 9 (a, b): the retry of an erased message used to create a new data key
    (sealing came before the duplicate check), so the next `erase` reported the conversation
    again and appended a second SubjectErased."""
    alice = Person("alice")
    chat(store, "c-alice", alice)
    event = NewEvent("MessagePosted", {"role": "visitor", "text": alice.text})
    store.append("c-alice", event)
    erase_subject(store, alice.phone)
    codec = store.codec
    assert isinstance(codec, ShreddingCodec)
    assert codec.table is not None
    assert codec.table.active_key("c-alice") is None
    length = store.version("c-alice")

    assert store.append("c-alice", event).duplicate
    assert codec.table.active_key("c-alice") is None  # no new data key
    again = erase_subject(store, alice.phone)
    assert (again.erased, again.already_erased) == ([], ["c-alice"])
    assert store.version("c-alice") == length
    assert [e.type for e in store.read("c-alice")].count("SubjectErased") == 1


def test_an_unused_key_is_destroyed_without_a_second_record(store: Ledger) -> None:
    """A key made for an append that never committed holds nothing: erasing destroys it but
    records no second SubjectErased."""
    alice = Person("alice")
    chat(store, "c-alice", alice)
    erase_subject(store, alice.member)
    length = store.version("c-alice")
    codec = store.codec
    assert isinstance(codec, ShreddingCodec)
    assert codec.table is not None
    codec.encode("c-alice", "MessagePosted", {"role": "visitor", "text": "never stored"})
    assert codec.table.active_key("c-alice") is not None
    report = erase_subject(store, alice.member)
    assert (report.erased, report.already_erased) == ([], ["c-alice"])
    assert codec.table.active_key("c-alice") is None
    assert store.version("c-alice") == length


def test_another_process_serves_no_plaintext_a_second_after_the_erasure(
    durable_url: str,
) -> None:
    """Issue 17, class 9 (c): with the default key cache (30 s), a reader that had the key
    cached kept decrypting for up to 30 s after another process erased the subject."""
    import time

    alice = Person("alice")
    with open_configured(durable_url) as reader, open_configured(durable_url) as eraser:
        chat(reader, "c-alice", alice)
        assert alice.text in texts(reader.read("c-alice"))  # the key is cached now
        erase_subject(eraser, f"tel:{alice.phone}")
        erased_at = time.monotonic()
        while alice.text in texts(reader.read("c-alice")):
            assert time.monotonic() - erased_at < 1.0, "plaintext served 1 s after erasure"
            time.sleep(0.05)
        assert privacy.ERASED in texts(reader.read("c-alice"))
