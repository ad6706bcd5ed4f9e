"""The relay's checkpoint and the consumer's view in `threadline projections status`.

Registered only when Kafka is configured (`THREADLINE_KAFKA_BOOTSTRAP_SERVERS` set), so a
status call on a single-process install opens nothing extra. Lag there is in global
sequence numbers (ledger max − position); the consumer's per-partition lag in records is
on its /metrics endpoint (`threadline_consumer_lag_messages`).
A partitioned log's relay is one row per partition (`relay_partition_rows`).
"""

from __future__ import annotations

from collections.abc import Callable

from threadline.projections.errors import ProjectionError
from threadline.projections.service import TRACKERS
from threadline.projections.views import Batch, TrackedView, TrackingState
from threadline.streaming.settings import StreamSettings


class _ReadOnly(TrackedView):
    def __init__(
        self, name: str, tracking: Callable[[], TrackingState], close: Callable[[], None]
    ) -> None:
        self.name = name
        self._tracking = tracking
        self._close = close

    def tracking(self) -> TrackingState:
        return self._tracking()

    def commit(self, batch: Batch) -> None:
        raise ProjectionError(f"{self.name} is not a read model of this process")

    def reset(self) -> None:
        raise ProjectionError(f"{self.name} cannot be rebuilt from here")

    def close(self) -> None:
        self._close()


def relay_status(s: StreamSettings) -> TrackedView:
    from threadline.streaming.checkpoint import open_checkpoint

    try:
        checkpoint = open_checkpoint(s.database_url, s.relay_name)
    except Exception as exc:  # one line for the CLI, whatever the backend raised
        raise ProjectionError(f"relay checkpoint: {type(exc).__name__}: {exc}") from None
    return _ReadOnly("kafka.relay", checkpoint.tracking, checkpoint.close)


def relay_partition_rows(s: StreamSettings, heads: dict[int, int]) -> list[dict[str, object]]:
    """A per-partition relay (THREADLINE_LOG_PARTITIONS > 1) as one row per partition:
    `kafka.relay.p<p>` at its checkpoint's `seq`, behind that partition's head (the
    partition's sequence, not the global one, which would count holes as lag)."""
    from threadline.streaming.checkpoint import open_checkpoint
    from threadline.streaming.partition_relay import checkpoint_name

    rows: list[dict[str, object]] = []
    for p, head in sorted(heads.items()):
        try:
            checkpoint = open_checkpoint(s.database_url, checkpoint_name(s.relay_name, p))
        except Exception as exc:  # one line for the CLI, whatever the backend raised
            raise ProjectionError(f"relay checkpoint: {type(exc).__name__}: {exc}") from None
        try:
            position = checkpoint.tracking().position
        finally:
            checkpoint.close()
        rows.append(
            {
                "name": f"kafka.relay.p{p}",
                "position": position,
                "max_sequence": head,
                "lag": max(0, head - position),
                "pending_gaps": [],
            }
        )
    return rows


def consumer_status(s: StreamSettings) -> TrackedView:
    from threadline.streaming.service import open_consumer_view

    try:
        view = open_consumer_view(s)
    except Exception as exc:
        raise ProjectionError(f"consumer view: {type(exc).__name__}: {exc}") from None
    return _ReadOnly("kafka.consumer", view.tracking, view.close)


def register_status(settings: StreamSettings) -> None:
    if "kafka_bootstrap_servers" in settings.model_fields_set:
        TRACKERS["kafka.relay"] = lambda: relay_status(settings)
        TRACKERS["kafka.consumer"] = lambda: consumer_status(settings)
