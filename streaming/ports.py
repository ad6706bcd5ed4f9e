"""The two seams of the Kafka adapters, so the relay and consumer logic run without a broker
in unit tests (real-broker tests use `producer.py` / `consumer.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from threadline.ledger.envelope import RecordedEvent


class Publisher(Protocol):
    def publish(self, events: Sequence[RecordedEvent]) -> None:
        """Returns once the broker acknowledged every event (acks=all), in order per
        conversation; raises `PublishFailedError` otherwise (some may have been written)."""
        ...

    def close(self) -> None: ...
