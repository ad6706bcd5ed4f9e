"""The FastAPI application: routes, JSON error mapping, limits, live hub life cycle."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from threadline.access.policy import TenantDirectory
from threadline.channels.console.delivery import LegDelivery
from threadline.channels.console.wiring import mount as mount_console
from threadline.channels.http import (
    conversations,
    errors,
    fast_append,
    messaging_routes,
    ops,
    privacy_routes,
    stream,
    voice_routes,
)
from threadline.channels.http.metrics import HttpMetrics
from threadline.channels.http.middleware import BodyLimit, CountRequests
from threadline.channels.http.redact import install_log_redaction
from threadline.channels.services import Services
from threadline.channels.voice.bridge_calls import CallBridges
from threadline.channels.widget import routes as widget


def _no_telemetry() -> dict[str, Any]:
    """Newer FastAPI asks OpenTelemetry's global providers on every request (a few os.environ
    lookups, ~5% of an append's CPU); Threadline exports its own /metrics, so switch it off
    where the option exists."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def create_app(services: Services, *, close_services: bool = True) -> FastAPI:
    """`close_services`: close the ledger and key store when the server shuts down."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        install_log_redaction()  # again: the server configured its log handlers by now
        services.hub.attach(services.feeds, asyncio.get_running_loop())
        if services.pstn is not None:
            await services.pstn.start()  # binds the SIP listener on this loop
        if services.email is not None:
            await services.email.start()  # binds the SMTP listener on this loop
        for job in services.jobs:
            job.start()
        try:
            yield
        finally:
            for job in services.jobs:
                await job.stop()
            if services.pstn is not None:
                await services.pstn.stop()
            if services.email is not None:
                await services.email.stop()
            await voice_routes.shutdown(app)
            services.hub.detach()
            if close_services:
                services.close()

    app = FastAPI(
        title="Threadline",
        version="1",
        summary="Event-sourced omnichannel conversation ledger",
        description=(
            "One durable conversation; channels are transports. Errors are JSON "
            '`{"error": code, "detail": message}`; a request answered with 4xx appends nothing.'
        ),
        lifespan=lifespan,
        **_no_telemetry(),
    )
    install_log_redaction()
    app.state.services = services
    app.state.directory = TenantDirectory(services.ledger)
    metrics = HttpMetrics()
    app.state.http_metrics = metrics
    errors.install(app)
    app.include_router(conversations.router)
    fast_append.install(app)  # the append route's fast path, first in the router
    app.include_router(stream.router)
    app.include_router(ops.router)
    app.include_router(privacy_routes.router)
    app.include_router(widget.router)
    voice_routes.install(app, services)
    mount_console(
        app,
        services.ledger,
        services.settings.database_url,
        settings=services.console_settings,
        delivery=LegDelivery(
            services.messaging, services.email.service if services.email else None
        ),
        calls=CallBridges(app.state.voice.legs, ice=app.state.voice.ice_config),
        failure_secret=services.failure_secret,
    )
    if services.messaging is not None:
        messaging_routes.install(app, services.messaging, services.messaging_settings)
    app.add_middleware(BodyLimit, max_bytes=services.settings.max_body_bytes)
    app.add_middleware(CountRequests, metrics=metrics)
    return app
