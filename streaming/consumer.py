"""The consumer runner on Kafka with kafka-python (leaf adapter).

A consumer group member: poll → apply the records to the view in ONE transaction
(`Projector`) → commit the offsets to Kafka. A crash between the view transaction and the
offset commit redelivers those records; the view recognises them (conversation positions
stored with the facts) and applies nothing twice. If the view transaction fails, the
partitions are rewound to the first record of the poll and retried with backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError

from threadline.ledger.envelope import RecordedEvent
from threadline.streaming.errors import BadMessageError
from threadline.streaming.projector import Projector
from threadline.streaming.sealed import StreamDecoder

log = logging.getLogger(__name__)


class KafkaEventConsumer:
    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        group: str,
        projector: Projector,
        *,
        max_poll_records: int = 500,
        fetch_max_wait_ms: int = 50,
        max_poll_interval_ms: int = 300_000,
        session_timeout_ms: int = 45_000,
        heartbeat_interval_ms: int = 3_000,
        backoff_max_s: float = 5.0,
        after_view_commit: Callable[[int], None] | None = None,
        decoder: StreamDecoder | None = None,
    ) -> None:
        self.decoder = decoder or StreamDecoder()
        self.topic = topic
        self.projector = projector
        self.stats = projector.stats
        self.backoff_max_s = backoff_max_s
        self.after_view_commit = after_view_commit
        self.lag: dict[int, int] = {}
        self.last_poll = 0.0
        self._config: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers.split(","),
            "group_id": group,
            "client_id": f"threadline-consumer-{group}",
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_poll_records": max_poll_records,
            "fetch_max_wait_ms": fetch_max_wait_ms,
            "max_poll_interval_ms": max_poll_interval_ms,
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
            "reconnect_backoff_max_ms": 2000,
        }
        self._consumer: Any = None

    def _get(self) -> Any:
        if self._consumer is None:
            self._consumer = KafkaConsumer(self.topic, **self._config)
        return self._consumer

    def poll_once(self, timeout_ms: int = 500) -> int:
        """One poll → view transaction → offset commit; returns events applied."""
        consumer = self._get()
        polled = consumer.poll(timeout_ms=timeout_ms)
        self.last_poll = time.time()
        events: list[RecordedEvent] = []
        first: dict[TopicPartition, int] = {}
        try:
            for tp, records in sorted(polled.items(), key=lambda kv: kv[0].partition):
                first[tp] = records[0].offset
                for r in records:
                    try:
                        events.append(self.decoder(r.value))
                    except BadMessageError as exc:
                        # A poison record must not stall the partition; counted and logged.
                        self.stats.bad_records += 1
                        log.error("skipping %s offset %d: %s", tp, r.offset, exc)
            applied = self.projector.apply(events)
        except Exception:
            for tp, records in polled.items():  # also those not reached by the decode loop
                first.setdefault(tp, records[0].offset)
            for tp, offset in first.items():
                consumer.seek(tp, offset)  # read the same records again after the backoff
            raise
        if polled:
            if self.after_view_commit is not None:
                self.after_view_commit(applied)
            try:
                consumer.commit()
                self.stats.commits += 1
            except CommitFailedError as exc:
                # Rebalanced meanwhile: the new owner gets these records again and skips them.
                log.warning("offset commit failed after a rebalance: %s", exc)
        self._update_lag(consumer)
        return applied

    def _update_lag(self, consumer: Any) -> None:
        lag: dict[int, int] = {}
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            try:
                lag[tp.partition] = max(0, high - consumer.position(tp, timeout_ms=1000))
            except KafkaError:
                continue
        self.lag = lag

    def run(self, stop: threading.Event) -> None:
        backoff = 0.2
        while not stop.is_set():
            try:
                self.poll_once()
                backoff = 0.2
            except Exception as exc:
                log.warning(
                    "consumer: %s: %s; retrying in %.1f s", type(exc).__name__, exc, backoff
                )
                if isinstance(exc, KafkaError):
                    self._discard()
                stop.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)

    def _discard(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                consumer.close(autocommit=False)
            except Exception:
                log.debug("closing a failed consumer raised", exc_info=True)

    def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.close(autocommit=False)
