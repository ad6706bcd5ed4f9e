"""What outer layers call: open the read models, keep them running, read the metrics.

`open_metrics_view(url)` picks the backend from the URL like the ledger does (`memory://`,
`sqlite:///PATH`, `postgresql://…`); backends are imported lazily, so psycopg is loaded only
for PostgreSQL. `MetricsService` bundles a view with its runner for the API:
`handoff_metrics()` is the body of `GET /v1/metrics/handoff`, `prometheus_text()` the
projection's part of `GET /metrics`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from threadline.ledger.backends import Backend, Kind, sqlite_path
from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.errors import StoreUnavailableError
from threadline.projections.errors import ProjectionError, UnknownProjectionError
from threadline.projections.prometheus import render
from threadline.projections.runner import BackgroundRunner, GlobalLog, Runner
from threadline.projections.settings import ProjectionSettings
from threadline.projections.views import METRICS, MemoryMetricsView, MetricsView, TrackedView

Listener = Callable[[list[RecordedEvent]], None]


class SubscribableLog(GlobalLog, Protocol):
    def subscribe(self, listener: Listener) -> Callable[[], None]: ...


def view_url(settings: ProjectionSettings, database_url: str) -> str:
    """Where the read models live: THREADLINE_PROJECTIONS_DATABASE_URL, else the ledger's
    database."""
    return settings.projections_database_url or database_url


def open_metrics_view(url: str) -> MetricsView:
    """The metrics read model at `url` (see `view_url`), with its tables created."""
    try:
        backend = Backend.parse(url)
    except StoreUnavailableError as exc:
        raise ProjectionError(f"projections database: {exc}") from None
    if backend.kind is Kind.MEMORY:
        return MemoryMetricsView()
    if backend.kind is Kind.SQLITE:
        from threadline.projections.view_sqlite import open_sqlite_view

        return open_sqlite_view(sqlite_path(url))
    from threadline.projections.view_postgres import open_postgres_view

    return open_postgres_view(backend.dsn)


# Cross-conversation read models by name (`threadline projections rebuild NAME`).
VIEWS: dict[str, Callable[[str], TrackedView]] = {METRICS: open_metrics_view}

# Other followers of the global log that are not rebuilt from here (e.g. the Kafka relay's
# checkpoint, registered by threadline.streaming): `threadline projections status` shows them too.
TRACKERS: dict[str, Callable[[], TrackedView]] = {}


def open_view(name: str, url: str) -> TrackedView:
    try:
        opener = VIEWS[name]
    except KeyError:
        known = ", ".join(sorted(VIEWS))
        raise UnknownProjectionError(f"unknown projection {name!r} (known: {known})") from None
    return opener(url)


def runner_for(
    log: GlobalLog, view: TrackedView, settings: ProjectionSettings | None = None
) -> Runner:
    s = settings or ProjectionSettings()
    return Runner(
        log,
        view,
        batch_size=s.projections_batch_size,
        gap_timeout_s=s.projections_gap_timeout_s,
        max_gaps=s.projections_max_gaps,
    )


class MetricsService:
    """A metrics view kept up to date from `log` by a background runner."""

    def __init__(
        self,
        log: SubscribableLog,
        view: MetricsView,
        settings: ProjectionSettings | None = None,
    ) -> None:
        self.settings = settings or ProjectionSettings()
        self.log = log
        self.view = view
        self.runner = runner_for(log, self.view, self.settings)
        self._background = BackgroundRunner(
            self.runner, log.subscribe, poll_interval_s=self.settings.projections_poll_interval_s
        )

    def start(self) -> None:
        self._background.start()

    def stop(self) -> None:
        self._background.stop()

    def close(self) -> None:
        self.stop()
        self.view.close()

    def handoff_metrics(self) -> dict[str, Any]:
        doc = self.view.metrics().model_dump(mode="json")
        doc["lag"] = self.runner.lag()
        return doc

    def prometheus_text(self) -> str:
        return render(self.view.metrics(), lag=self.runner.lag())
