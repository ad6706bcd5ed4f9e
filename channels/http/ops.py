"""Operational endpoints: `/healthz`, `/metrics` (Prometheus), `/v1/metrics/handoff` (JSON)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from channels.access import require_key
from channels.errors import ChannelError, ServiceUnavailable
from channels.http.deps import RequiredPrincipal, ServicesDep
from channels.http.errors import error_response, responses
from channels.http.metrics import HttpMetrics, flatten_numbers
from channels.http.schemas import Health
from ledger.errors import LedgerError

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, responses=responses(503))
async def healthz(services: ServicesDep) -> Any:
    """Ok when the ledger answers a query."""
    try:
        top = await run_in_threadpool(services.ledger.max_sequence)
    except LedgerError as exc:
        return error_response(503, "store_unavailable", type(exc).__name__)
    return JSONResponse({"status": "ok", "max_sequence": top})


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def prometheus(request: Request, services: ServicesDep) -> PlainTextResponse:
    """Prometheus text format: request counts and latency, live streams, handoff funnel."""
    metrics: HttpMetrics = request.app.state.http_metrics
    gauges: dict[str, float] = {"threadline_live_streams": float(services.hub.watcher_count())}
    if services.read_models is not None:
        models = services.read_models
        try:
            doc = await run_in_threadpool(models.handoff_metrics)
            gauges.update(flatten_numbers("threadline_handoff", doc))
        except (LedgerError, ChannelError):  # scraping must not fail on a missing projection
            pass
    return PlainTextResponse(
        metrics.render(gauges), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


@router.get(
    "/v1/metrics/handoff",
    responses={**responses(401, 403, 429, 503)},
    tags=["metrics"],
)
async def handoff_metrics(services: ServicesDep, principal: RequiredPrincipal) -> dict[str, Any]:
    """Channel switches, CSAT after a switch, re-verification rate, offer → accept →
    complete funnel and latencies (adapter API key required)."""
    require_key(principal)
    models = services.read_models
    if models is None:
        raise ServiceUnavailable("projections are not configured")
    return dict(await run_in_threadpool(models.handoff_metrics))
