"""Operational endpoints: `/healthz`, `/metrics` (Prometheus), `/v1/metrics/handoff` (JSON)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from threadline.access.errors import ServiceUnavailableError
from threadline.access.policy import require_key
from threadline.channels.http.deps import RequiredPrincipal, ServicesDep
from threadline.channels.http.errors import error_response, responses
from threadline.channels.http.metrics import HttpMetrics
from threadline.channels.http.schemas import Health
from threadline.channels.http.tenant_metrics import TenantMetrics
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
    complete funnel and latencies of the key's own tenant; under `human`, the handoff to a
    person (time to human, abandonment, re-verification on transfer, resolution and CSAT by
    who resolved). Adapter API key required."""
    key = require_key(principal)
    if services.read_models is None:
        raise ServiceUnavailableError("projections are not configured")
    per_tenant = _tenant_metrics(request, services)

    def read() -> dict[str, Any]:
        doc = per_tenant.metrics(key.tenant).model_dump(mode="json")
        # Events appended since the fold caught up (it reads up to the head on every call).
        doc["lag"] = max(0, services.ledger.max_sequence() - int(doc["position"]))
        return doc

    doc = await run_in_threadpool(read)
    doc["human"] = await run_in_threadpool(_human_metrics(request, services).summary)
    return doc


_TENANT_METRICS_LOCK = threading.Lock()


def _tenant_metrics(request: Request, services: ServicesDep) -> TenantMetrics:
    with _TENANT_METRICS_LOCK:
        found: TenantMetrics | None = getattr(request.app.state, "tenant_metrics", None)
        if found is None:
            found = TenantMetrics(services.ledger)
            request.app.state.tenant_metrics = found
        return found


def _human_metrics(request: Request, services: Services) -> HumanMetrics:
    with _TENANT_METRICS_LOCK:
        found: HumanMetrics | None = getattr(request.app.state, "human_metrics", None)
        if found is None:
            found = request.app.state.human_metrics = HumanMetrics(services.ledger)
        return found
