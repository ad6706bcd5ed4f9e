"""`Publisher` on Kafka with kafka-python (leaf adapter).

acks=all and one request in flight per connection, so a retried request cannot overtake a
later one; optionally the idempotent producer (the broker then also drops the producer's own
retried duplicates). Any failure closes the producer: the relay
republishes the whole batch from its checkpoint with a fresh producer, so a batch whose
first half failed and second half succeeded still reaches consumers in order (they skip
what they already have).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.partitions import partition_of
from threadline.streaming.envelope import encode
from threadline.streaming.errors import PublishFailedError, StreamConfigurationError

log = logging.getLogger(__name__)


class KafkaPublisher:
    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        idempotence: bool = False,
        ack_timeout_s: float = 30.0,
        partitions: int = 12,
        replication_factor: int = 1,
        client_id: str = "threadline-relay",
        log_partitions: int = 1,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.idempotence = idempotence
        self.ack_timeout_s = ack_timeout_s
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.client_id = client_id
        # issue 18: with a partitioned log (THREADLINE_LOG_PARTITIONS = N > 1), log partition
        # p goes to Kafka partition p (the topic needs ≥ N partitions); with N = 1 the
        # client's key hash chooses, as before. Either way one conversation, one partition.
        self.log_partitions = log_partitions
        self._producer: Any = None
        self._topic_ready = False

    def _config(self) -> dict[str, Any]:
        timeout_ms = int(self.ack_timeout_s * 1000)
        request_ms = max(1000, min(10_000, timeout_ms // 2))
        return {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "client_id": self.client_id,
            "acks": "all",
            "enable_idempotence": self.idempotence,
            # kafka-python allows idempotence only with one request in flight per connection.
            "max_in_flight_requests_per_connection": 1,
            "linger_ms": 5,
            "batch_size": 256 * 1024,
            "request_timeout_ms": request_ms,
            "delivery_timeout_ms": max(timeout_ms, request_ms + 5),
            "max_block_ms": request_ms,
            "retry_backoff_ms": 100,
            "reconnect_backoff_max_ms": 2000,
        }

    def ensure_topic(self) -> None:
        """Creates the topic if it does not exist (partitions from settings)."""
        admin = KafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers.split(","),
            client_id=f"{self.client_id}-admin",
            request_timeout_ms=10_000,
        )
        try:
            admin.create_topics(
                [NewTopic(self.topic, self.partitions, self.replication_factor)],
                timeout_ms=10_000,
            )
            log.info("created topic %s with %d partitions", self.topic, self.partitions)
        except TopicAlreadyExistsError:
            pass
        finally:
            admin.close()

    def publish(self, events: Sequence[RecordedEvent]) -> None:
        try:
            if not self._topic_ready:
                self.ensure_topic()
                self._topic_ready = True
            if self._producer is None:
                self._producer = KafkaProducer(**self._config())
                self._check_partitions(self._producer)
            producer = self._producer
            futures = []
            for event in events:
                m = encode(event)
                futures.append(
                    producer.send(
                        self.topic,
                        key=m.key,
                        value=m.value,
                        headers=m.headers,
                        partition=self._partition(event.conversation_id),
                    )
                )
            producer.flush(timeout=self.ack_timeout_s)
            for f in futures:
                f.get(timeout=0)  # raises the delivery error, if any
        except (KafkaError, OSError, ValueError) as exc:
            self._discard()
            raise PublishFailedError(f"{type(exc).__name__}: {exc}") from exc

    def _partition(self, conversation_id: str) -> int | None:
        if self.log_partitions <= 1:
            return None
        return partition_of(conversation_id, self.log_partitions)

    def _check_partitions(self, producer: Any) -> None:
        if self.log_partitions <= 1:
            return
        found = producer.partitions_for(self.topic) or set()
        if len(found) < self.log_partitions:
            raise StreamConfigurationError(
                f"topic {self.topic} has {len(found)} partitions; the log has "
                f"{self.log_partitions} (THREADLINE_LOG_PARTITIONS): it needs at least as many"
            )

    def _discard(self) -> None:
        producer, self._producer = self._producer, None
        self._topic_ready = False  # a restarted broker may have lost the topic
        if producer is not None:
            try:
                producer.close(timeout=0)
            except Exception:  # closing a broken producer must not mask the real error
                log.debug("closing a failed producer raised", exc_info=True)

    def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=self.ack_timeout_s)
