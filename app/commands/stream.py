"""`threadline relay` and `threadline consume`: long-running processes that stop cleanly on
SIGTERM/SIGINT (finishing the batch in hand), with /metrics and /healthz when a port is set."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Annotated

import typer

from threadline.app.commands.ledger import config, fail
from threadline.ledger.backends import Backend, Kind
from threadline.ledger.errors import ThreadlineError
from threadline.streaming.errors import StreamError
from threadline.streaming.metrics import MetricsServer, consumer_text, fresh, relay_text
from threadline.streaming.settings import StreamSettings


def _settings() -> StreamSettings:
    return config().stream


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _listen(url: str, wake: threading.Event) -> Callable[[], None]:
    """On PostgreSQL the ledger NOTIFYs at every commit: publish at once instead of at the
    next poll (the poll stays, for anything a lost notification would miss)."""
    if Backend.parse(url).kind is not Kind.POSTGRES:
        return lambda: None
    from threadline.channels.live_postgres import listener

    return listener(url)(wake.set)


def relay(
    once: Annotated[
        bool, typer.Option("--once", help="Publish what is in the log now, then exit")
    ] = False,
) -> None:
    """Publish the ledger's global log to Kafka (the outbox relay), from its checkpoint."""
    from threadline.streaming.service import build_relay

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = _settings()
    try:
        r = build_relay(settings, ledger_settings=config().ledger)
    except ThreadlineError as exc:
        fail(f"error: {exc}")
    server: MetricsServer | None = None
    try:
        if once:
            published = r.catch_up()
            r.refresh_stats()
            each = getattr(r, "partitions", {})
            detail = "".join(f"; p{p} {s.position}" for p, s in sorted(each.items()))
            typer.echo(f"published {published} events; position {r.stats.position}{detail}")
            return
        if settings.relay_metrics_port:
            server = MetricsServer(
                settings.metrics_host,
                settings.relay_metrics_port,
                lambda: relay_text(r.stats, settings.relay_name, getattr(r, "partitions", None)),
                fresh(lambda: r.stats.last_success, 60.0),
            ).start()
        wake = threading.Event()
        stop_listening = _listen(settings.database_url, wake)
        try:
            r.run(_stop_on_signals(), wake)
        finally:
            stop_listening()
    except StreamError as exc:
        fail(f"error: {exc}")
    finally:
        if server is not None:
            server.close()
        r.close()


def consume() -> None:
    """Keep the metrics view up to date from the Kafka topic (one consumer group member)."""
    from threadline.streaming.service import build_consumer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = _settings()
    try:
        c = build_consumer(settings)
    except (StreamError, Exception) as exc:  # a view that cannot open: one line, exit 1
        fail(f"error: cannot open the consumer's view: {type(exc).__name__}: {exc}")
    server: MetricsServer | None = None
    try:
        if settings.consumer_metrics_port:
            server = MetricsServer(
                settings.metrics_host,
                settings.consumer_metrics_port,
                lambda: consumer_text(c.stats, c.lag, settings.consumer_group),
                fresh(lambda: c.last_poll, 60.0),
            ).start()
        c.run(_stop_on_signals())
    finally:
        if server is not None:
            server.close()
        c.close()
        c.projector.view.close()


def register(app: typer.Typer) -> None:
    app.command("relay")(relay)
    app.command("consume")(consume)
