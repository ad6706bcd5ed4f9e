"""Encrypted stream (issue 18) through the real relay, the Tansu broker and PostgreSQL:
no personal text in any record's bytes, a consumer holding the keyring rebuilds the same
transcript, and after an erasure the consumer's view shows `[erased]`."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from harness.streaming import read_topic
from tests.support.ledgers import open_configured
from threadline.ledger.envelope import NewEvent, RecordedEvent
from threadline.ledger.erasure import erase_subject
from threadline.ledger.store import Ledger
from threadline.projections.transcript import build_transcript, render_text
from threadline.streaming.sealed import StreamDecoder
from threadline.streaming.service import build_relay
from threadline.streaming.settings import StreamSettings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture
def ledger(fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    monkeypatch.setenv("THREADLINE_MASTER_KEY", secrets.token_urlsafe(32))
    monkeypatch.setenv("THREADLINE_PRIVACY", "on")
    with open_configured(fresh_postgres_url) as store:
        yield store


def publish(url: str, bootstrap: str, topic: str, ledger: Ledger) -> None:
    relay = build_relay(
        StreamSettings(
            database_url=url,
            kafka_bootstrap_servers=bootstrap,
            kafka_topic=topic,
            kafka_partitions=4,
        ),
        ledger,
    )
    try:
        relay.catch_up()
    finally:
        relay.close()


def transcript(events: list[RecordedEvent], cid: str) -> str:
    return render_text(build_transcript(e for e in events if e.conversation_id == cid))


def test_records_stay_encrypted_and_erasure_reaches_the_consumer(
    ledger: Ledger, fresh_postgres_url: str, kafka_bootstrap: str, kafka_topic: str
) -> None:
    tag = secrets.token_hex(6)
    people = {f"c-{i}": (f"visitor:{tag}-{i}", f"my secret {tag}-{i}") for i in range(3)}
    for cid, (visitor, text) in people.items():
        ledger.append_batch(
            cid,
            [
                NewEvent("ConversationStarted", {"channel": "chat", "visitor_ref": visitor}),
                NewEvent("MessagePosted", {"role": "visitor", "text": text}, leg_id="l1"),
                NewEvent("AgentSpoke", {"text": f"noted: {text}"}, leg_id="l1"),
            ],
        )
    publish(fresh_postgres_url, kafka_bootstrap, kafka_topic, ledger)
    records = read_topic(kafka_bootstrap, kafka_topic, 9)
    assert len(records) == 9
    for r in records:
        raw = r.value + r.key + b"".join(v for _, v in r.headers)
        assert tag.encode() not in raw  # neither visitor references nor texts
        assert r.key.decode() in people

    with open_configured(fresh_postgres_url) as consumer_side:  # another codec, another cache
        decode = StreamDecoder(consumer_side.codec)
        seen = [decode(r.value) for r in records]
        truth = ledger.read_all(limit=1000)
        for cid in people:
            assert transcript(seen, cid) == transcript(truth, cid)
            assert people[cid][1] in transcript(seen, cid)

        erase_subject(ledger, people["c-0"][0])
        publish(fresh_postgres_url, kafka_bootstrap, kafka_topic, ledger)
        records = read_topic(kafka_bootstrap, kafka_topic, 10)
        view = [decode(r.value) for r in records]  # SubjectErased arrives in partition order
        assert [e.type for e in view if e.conversation_id == "c-0"][-1] == "SubjectErased"
        # The consumer rebuilds its view; its key cache (30 s) still held c-0's key.
        replay = [decode(r.value) for r in records]
    assert people["c-0"][1] not in transcript(replay, "c-0")
    assert "[erased]" in transcript(replay, "c-0")
    assert people["c-1"][1] in transcript(replay, "c-1")
