"""Operational endpoints: `/healthz`, `/metrics` (Prometheus), `/v1/metrics/handoff` (JSON)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from threadline.access.errors import ServiceUnavailable
from threadline.access.policy import require_key
from threadline.channels.http.deps import RequiredPrincipal, ServicesDep
from threadline.channels.http.errors import error_response, responses
from threadline.channels.http.metrics import HttpMetrics
from threadline.channels.http.schemas import Health
from threadline.channels.services import Services
from threadline.ledger.errors import LedgerError
from threadline.projections.human_metrics import HumanMetrics

log = logging.getLogger(__name__)
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
    text = metrics.render(gauges)
    if services.read_models is not None:
        try:
            text += await run_in_threadpool(services.read_models.metrics_text)
        except LedgerError:  # a scrape reports what it can
            log.exception("handoff metrics unavailable for /metrics")
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get(
    "/v1/metrics/handoff",
    responses={**responses(401, 403, 429, 503)},
    tags=["metrics"],
)
async def handoff_metrics(
    request: Request, services: ServicesDep, principal: RequiredPrincipal
) -> dict[str, Any]:
    """Channel switches, CSAT after a switch, re-verification rate, offer → accept →
    complete funnel and latencies; under `human`, the handoff to a person (time to human,
    abandonment, re-verification on transfer, resolution and CSAT by who resolved).
    Adapter API key required."""
    require_key(principal)
    models = services.read_models
    if models is None:
        raise ServiceUnavailable("projections are not configured")
    doc = dict(await run_in_threadpool(models.handoff_metrics))
    doc["human"] = await run_in_threadpool(_human_metrics(request, services).summary)
    return doc


def _human_metrics(request: Request, services: Services) -> HumanMetrics:
    found: HumanMetrics | None = getattr(request.app.state, "human_metrics", None)
    if found is None:
        found = request.app.state.human_metrics = HumanMetrics(services.ledger)
    return found
