"""Smoke tests for the Tansu Kafka-protocol broker fixtures."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from harness.tansu import TansuBroker

pytestmark = pytest.mark.kafka

GROUP_TIMEOUTS = {
    "max_poll_interval_ms": 5000,
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 1000,
}


def _roundtrip(bootstrap: str, topic: str, n: int) -> list[bytes]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for i in range(n):
            producer.send(topic, key=b"k", value=f"v{i}".encode()).get(timeout=10)
    finally:
        producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{topic}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=15000,
        **GROUP_TIMEOUTS,
    )
    try:
        values: list[bytes] = []
        for record in consumer:
            values.append(record.value)
            if len(values) == n:
                break
        return values
    finally:
        consumer.close()


def test_produce_and_consume_in_key_order(kafka_bootstrap: str, kafka_topic: str) -> None:
    assert kafka_bootstrap.startswith("127.0.0.1:")
    values = _roundtrip(kafka_bootstrap, kafka_topic, 20)
    assert values == [f"v{i}".encode() for i in range(20)]


def test_private_broker_restarts_on_same_port(private_tansu_broker: TansuBroker) -> None:
    port = private_tansu_broker.port
    assert _roundtrip(private_tansu_broker.bootstrap, "before", 3) == [b"v0", b"v1", b"v2"]
    private_tansu_broker.stop()
    assert not private_tansu_broker.running
    private_tansu_broker.start()
    assert private_tansu_broker.port == port
    assert _roundtrip(private_tansu_broker.bootstrap, "after", 3) == [b"v0", b"v1", b"v2"]
