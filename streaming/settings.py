"""Relay and consumer settings: one section of the root `Settings` (`threadline.app.settings`),
read from `THREADLINE_*` variables there and passed down."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


class StreamSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ENV_PREFIX: ClassVar[str] = "THREADLINE_"
    # Internal tuning: kept for tests and embedding code, not settable from the environment.
    TUNING: ClassVar[frozenset[str]] = frozenset(
        {
            "relay_backoff_initial_s",
            "relay_backoff_max_s",
            "relay_ack_timeout_s",
            "relay_gap_timeout_s",
            "consumer_fetch_max_wait_ms",
            "consumer_max_poll_interval_ms",
            "consumer_session_timeout_ms",
            "consumer_heartbeat_interval_ms",
            "consumer_max_poll_records",
        }
    )

    # The ledger (read by the relay; its checkpoint lives in the same database).
    database_url: str = "sqlite:///threadline.db"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topic: str = Field(default="threadline.events", min_length=1, max_length=249)
    # Used only when the relay creates the topic; order is per conversation, so partitions
    # bound how many consumers can share the work.
    kafka_partitions: int = Field(default=12, ge=1, le=10_000)
    kafka_replication_factor: int = Field(default=1, ge=1, le=10)
    # Idempotent producer: the broker drops the producer's own retried duplicates. Off by
    # default: consumers dedupe anyway, order holds with one request in flight, and the
    # Tansu test broker rejects kafka-python 2.3's idempotent produce requests.
    kafka_idempotence: bool = False

    relay_name: str = Field(default="relay", min_length=1, max_length=100)
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_poll_interval_s: float = Field(default=0.05, gt=0, le=60)
    # A missing global sequence number is waited for this long before it is given up.
    relay_gap_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    relay_backoff_initial_s: float = Field(default=0.2, gt=0, le=60)
    relay_backoff_max_s: float = Field(default=5.0, gt=0, le=600)
    # How long one batch may wait for acknowledgements before it counts as failed.
    relay_ack_timeout_s: float = Field(default=30.0, gt=0, le=600)

    # The consumer's read model (a metrics view); default: the projections database.
    consumer_database_url: str | None = None
    # On PostgreSQL the consumer's tables live in this schema (never the API's view tables).
    consumer_schema: str = Field(default="threadline_consumer", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    consumer_group: str = Field(default="threadline.metrics", min_length=1, max_length=200)
    consumer_max_poll_records: int = Field(default=500, ge=1, le=10_000)
    # How long the broker may hold a fetch that has too little data. Kafka answers as soon as
    # one record is there; Tansu holds it this long, so it bounds end-to-end latency there.
    consumer_fetch_max_wait_ms: int = Field(default=50, ge=0, le=10_000)
    # Group timing. Kafka's defaults suit Kafka; the Tansu test broker needs 5000/6000/1000.
    consumer_max_poll_interval_ms: int = Field(default=300_000, ge=1000)
    consumer_session_timeout_ms: int = Field(default=45_000, ge=1000)
    consumer_heartbeat_interval_ms: int = Field(default=3_000, ge=100)

    # Prometheus text and health on http://HOST:PORT/metrics and /healthz (0 = off).
    metrics_host: str = "127.0.0.1"
    relay_metrics_port: int = Field(default=0, ge=0, le=65535)
    consumer_metrics_port: int = Field(default=0, ge=0, le=65535)
