"""Stream records in stored form (issue 18): personal fields stay encrypted on the topic, a
consumer with the keyring reads the same transcript, erasure reaches the consumer at once."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from threadline.ledger.envelope import NewEvent, RecordedEvent
from threadline.ledger.erasure import erase_subject
from threadline.ledger.store import Ledger, open_ledger
from threadline.projections.transcript import build_transcript, render_text
from threadline.streaming.envelope import ENVELOPE_VERSION, Message, encode
from threadline.streaming.errors import BadMessageError
from threadline.streaming.sealed import SealedLog, StreamDecoder


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("THREADLINE_PRIVACY", "on")
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def ledger(url: str) -> Iterator[Ledger]:
    with open_ledger(url) as store:
        yield store


def converse(ledger: Ledger, cid: str, visitor: str, text: str) -> None:
    ledger.append_batch(
        cid,
        [
            NewEvent("ConversationStarted", {"channel": "chat", "visitor_ref": visitor}),
            NewEvent("MessagePosted", {"role": "visitor", "text": text}, leg_id="l1"),
            NewEvent("AgentSpoke", {"text": f"you said {text}"}, leg_id="l1"),
        ],
    )


def records(ledger: Ledger) -> list[Message]:
    return [encode(e) for e in SealedLog(ledger).read_all(limit=1000)]


def texts(events: list[RecordedEvent], cid: str) -> str:
    return render_text(build_transcript(e for e in events if e.conversation_id == cid))


def test_no_personal_text_in_any_record(ledger: Ledger) -> None:
    text, visitor = f"secret-{secrets.token_hex(6)}", f"visitor:{secrets.token_hex(6)}"
    converse(ledger, "c1", visitor, text)
    messages = records(ledger)
    assert len(messages) == 3
    for m in messages:
        blob = m.value + m.key + b"".join(v for _, v in m.headers)
        assert text.encode() not in blob
        assert visitor.encode() not in blob
    assert b'"_pii"' in messages[1].value
    assert f'"envelope_version":{ENVELOPE_VERSION}'.encode() in messages[1].value
    assert messages[1].key == b"c1"


def test_consumer_with_keyring_rebuilds_the_transcript(ledger: Ledger, url: str) -> None:
    converse(ledger, "c1", "visitor:a", "hello there")
    converse(ledger, "c2", "visitor:b", "other chat")
    with open_ledger(url) as consumer_side:  # its own codec and key cache, as a consumer has
        decode = StreamDecoder(consumer_side.codec)
        events = [decode(m.value) for m in records(ledger)]
    ledger_events = ledger.read_all(limit=1000)
    for cid in ("c1", "c2"):
        assert texts(events, cid) == texts(ledger_events, cid)
    assert "hello there" in texts(events, "c1")
    assert [e.data for e in events] == [e.data for e in ledger_events]


def test_consumer_without_keyring_reads_markers(ledger: Ledger) -> None:
    converse(ledger, "c1", "visitor:a", "hello there")
    events = [StreamDecoder()(m.value) for m in records(ledger)]
    assert [e.type for e in events] == ["ConversationStarted", "MessagePosted", "AgentSpoke"]
    assert "hello there" not in texts(events, "c1")
    assert "[erased]" in texts(events, "c1")


def test_subject_erased_purges_the_consumer_view_at_once(ledger: Ledger, url: str) -> None:
    converse(ledger, "c1", "visitor:gone", "forget me")
    converse(ledger, "c2", "visitor:stays", "keep me")
    with open_ledger(url) as consumer_side:
        decode = StreamDecoder(consumer_side.codec)
        before = records(ledger)
        assert "forget me" in texts([decode(m.value) for m in before], "c1")  # keys cached
        erase_subject(ledger, "visitor:gone")
        after = records(ledger)
        assert [decode(m.value).type for m in after[len(before) :]] == ["SubjectErased"]
        # The key cache's TTL (30 s) has not run out: only SubjectErased can make this hold.
        replay = [decode(m.value) for m in after]
    assert "forget me" not in texts(replay, "c1")
    assert "[erased]" in texts(replay, "c1")
    assert "keep me" in texts(replay, "c2")


class _Down:
    """A keyring whose database is unreachable."""

    def encode(self, conversation_id: str, event_type: str, data: dict[str, object]) -> object:
        raise ConnectionError("keyring database down")

    def decode(self, conversation_id: str, event_type: str, stored: object) -> dict[str, object]:
        raise ConnectionError("keyring database down")


def test_keyring_outage_is_not_a_bad_record(ledger: Ledger) -> None:
    converse(ledger, "c1", "visitor:a", "hello there")
    sealed = records(ledger)[1].value
    with pytest.raises(ConnectionError):  # retried by the consumer, not skipped as poison
        StreamDecoder(_Down()).decode(sealed)
    with pytest.raises(BadMessageError):  # a blob that does not authenticate is a bad record
        StreamDecoder(ledger.codec).decode(sealed.replace(b'"f":["text"]', b'"f":["txt"]'))
