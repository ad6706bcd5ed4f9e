"""A partitioned log (THREADLINE_LOG_PARTITIONS = 4) relayed to a real Kafka-protocol broker
(Tansu) and a real PostgreSQL: log partition p lands in Kafka partition p, each
conversation in one partition, in its order."""

from __future__ import annotations

from collections import defaultdict

import pytest

from harness.streaming import GROUP_TIMING, read_topic, seed
from threadline.ledger.partitions import partition_of
from threadline.ledger.settings import LedgerSettings
from threadline.ledger.store import open_ledger
from threadline.streaming.envelope import decode
from threadline.streaming.service import build_relay
from threadline.streaming.settings import StreamSettings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def test_log_partition_p_goes_to_kafka_partition_p(
    fresh_postgres_url: str, kafka_bootstrap: str, kafka_topic: str
) -> None:
    ledger_settings = LedgerSettings(
        database_url=fresh_postgres_url, log_partitions=4, privacy="off"
    )
    stream = StreamSettings(
        database_url=fresh_postgres_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic=kafka_topic,
        kafka_partitions=4,
        consumer_group=f"{kafka_topic}.metrics",
        **GROUP_TIMING,
    )
    with open_ledger(settings=ledger_settings) as ledger:
        seed(ledger, conversations=40, per_conversation=5)
        relay = build_relay(stream, ledger_settings=ledger_settings)
        try:
            assert relay.catch_up() == 200
        finally:
            relay.close()
    records = read_topic(kafka_bootstrap, kafka_topic, 200)
    assert len(records) == 200
    positions: dict[str, list[int]] = defaultdict(list)
    for r in records:
        event = decode(r.value)
        assert r.partition == partition_of(event.conversation_id, 4)
        positions[event.conversation_id].append(event.position)
    assert {r.partition for r in records} == {0, 1, 2, 3}
    assert len(positions) == 40
    for seen in positions.values():
        assert seen == list(range(1, 6))
