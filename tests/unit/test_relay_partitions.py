"""The relay's partition choice for a partitioned log (the real-broker test is
tests/integration/test_kafka_partitions.py)."""

from __future__ import annotations

import pytest

from threadline.ledger.partitions import partition_of
from threadline.streaming.errors import StreamConfigurationError
from threadline.streaming.producer import KafkaPublisher


class TopicMetadata:
    """Stands in for the broker's answer to "which partitions has this topic"."""

    def __init__(self, count: int) -> None:
        self.count = count

    def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.count))


def test_unpartitioned_log_leaves_the_choice_to_the_key_hash() -> None:
    publisher = KafkaPublisher("localhost:1", "t")
    assert publisher._partition("conversation-1") is None
    publisher._check_partitions(TopicMetadata(1))  # any topic will do


def test_log_partition_is_the_kafka_partition() -> None:
    publisher = KafkaPublisher("localhost:1", "t", log_partitions=4)
    for cid in ("a", "b", "conversation-7", "x" * 40):
        assert publisher._partition(cid) == partition_of(cid, 4)


def test_topic_with_fewer_partitions_than_the_log_is_refused() -> None:
    publisher = KafkaPublisher("localhost:1", "t", log_partitions=4)
    publisher._check_partitions(TopicMetadata(4))
    with pytest.raises(StreamConfigurationError, match="has 2 partitions; the log has 4"):
        publisher._check_partitions(TopicMetadata(2))
