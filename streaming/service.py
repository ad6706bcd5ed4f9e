"""Wiring: a relay or a consumer from `StreamSettings` (the CLI and the tests use these)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from threadline.ledger.backends import Backend, Kind, sqlite_path
from threadline.ledger.codec import DataCodec
from threadline.ledger.errors import StoreUnavailableError
from threadline.ledger.settings import LedgerSettings
from threadline.ledger.store import Ledger, open_ledger
from threadline.projections.views import MemoryMetricsView, MetricsView
from threadline.streaming.checkpoint import open_checkpoint
from threadline.streaming.errors import StreamConfigurationError
from threadline.streaming.partition_relay import PartitionRelay
from threadline.streaming.projector import Projector
from threadline.streaming.relay import Relay
from threadline.streaming.sealed import SealedLog, StreamDecoder
from threadline.streaming.settings import StreamSettings

if TYPE_CHECKING:
    from threadline.streaming.consumer import KafkaEventConsumer


def build_relay(
    settings: StreamSettings,
    ledger: Ledger | None = None,
    ledger_settings: LedgerSettings | None = None,
) -> Relay | PartitionRelay:
    """`ledger_settings` (the configured ledger section) when the relay opens the ledger
    itself: the log's partition count must match the database's. A partitioned log
    (THREADLINE_LOG_PARTITIONS > 1) gets one relay loop per partition
    (`partition_relay.PartitionRelay`, checkpoints `<relay>.p<p>`)."""
    from threadline.streaming.producer import KafkaPublisher

    source = (
        ledger
        if ledger is not None
        else open_ledger(settings.database_url, settings=ledger_settings)
    )
    sealed = SealedLog(source)  # records carry the stored form: personal fields stay sealed
    log_partitions = sealed.partitions

    def publisher(client_id: str = "threadline-relay") -> KafkaPublisher:
        return KafkaPublisher(
            settings.kafka_bootstrap_servers,
            settings.kafka_topic,
            idempotence=settings.kafka_idempotence,
            ack_timeout_s=settings.relay_ack_timeout_s,
            partitions=settings.kafka_partitions,
            replication_factor=settings.kafka_replication_factor,
            client_id=client_id,
            log_partitions=log_partitions,  # issue 18: log partition p → Kafka partition p
        )

    if log_partitions > 1:
        try:
            return PartitionRelay.build(
                sealed,
                lambda name: open_checkpoint(settings.database_url, name),
                lambda p: publisher(f"threadline-relay-p{p}"),
                name=settings.relay_name,
                close_source=ledger is None,
                batch_size=settings.relay_batch_size,
                poll_interval_s=settings.relay_poll_interval_s,
                backoff_initial_s=settings.relay_backoff_initial_s,
                backoff_max_s=settings.relay_backoff_max_s,
            )
        except BaseException:
            if ledger is None:
                source.close()
            raise
    return Relay(
        sealed,
        open_checkpoint(settings.database_url, settings.relay_name),
        publisher(),
        batch_size=settings.relay_batch_size,
        gap_timeout_s=settings.relay_gap_timeout_s,
        poll_interval_s=settings.relay_poll_interval_s,
        backoff_initial_s=settings.relay_backoff_initial_s,
        backoff_max_s=settings.relay_backoff_max_s,
        close_source=ledger is None,
    )


def consumer_view_url(settings: StreamSettings) -> str:
    """THREADLINE_CONSUMER_DATABASE_URL, else the ledger's database (its own schema)."""
    return settings.consumer_database_url or settings.database_url


def open_consumer_view(settings: StreamSettings) -> MetricsView:
    url = consumer_view_url(settings)
    try:
        backend = Backend.parse(url)
    except StoreUnavailableError as exc:
        raise StreamConfigurationError(f"consumer database: {exc}") from None
    if backend.kind is Kind.MEMORY:
        return MemoryMetricsView()
    if backend.kind is Kind.POSTGRES:
        from threadline.streaming.consumer_view_postgres import open_postgres_consumer_view

        return open_postgres_consumer_view(backend.dsn, settings.consumer_schema)
    if url == settings.database_url:
        raise StreamConfigurationError(
            "on SQLite the consumer's view needs its own file: set "
            "THREADLINE_CONSUMER_DATABASE_URL (the ledger's file holds the API's view)"
        )
    from threadline.projections.view_sqlite import open_sqlite_view

    return open_sqlite_view(sqlite_path(url))


def build_consumer(
    settings: StreamSettings, view: MetricsView | None = None, codec: DataCodec | None = None
) -> KafkaEventConsumer:
    """`codec` (a ShreddingCodec with keyring access) decrypts personal fields; without it
    they read as erasure markers, which the metrics view does not need."""
    from threadline.streaming.consumer import KafkaEventConsumer

    return KafkaEventConsumer(
        settings.kafka_bootstrap_servers,
        settings.kafka_topic,
        settings.consumer_group,
        Projector(view if view is not None else open_consumer_view(settings)),
        max_poll_records=settings.consumer_max_poll_records,
        fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
        max_poll_interval_ms=settings.consumer_max_poll_interval_ms,
        session_timeout_ms=settings.consumer_session_timeout_ms,
        heartbeat_interval_ms=settings.consumer_heartbeat_interval_ms,
        decoder=StreamDecoder(codec),
    )
