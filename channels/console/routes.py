"""The console's HTTP surface under `/console`: pages, static assets and JSON data endpoints.

Every route but the login endpoint and the two assets the login form needs requires an
operator session (`auth`). Nothing here appends; an operator taking a conversation over
(`takeover`) is the console's only write.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from threadline.channels.console import auth
from threadline.channels.console.catalog import Catalog
from threadline.channels.console.catalog import Query as ListQuery
from threadline.channels.console.dashboard import Dashboard
from threadline.channels.console.errors import AuthenticationFailedError, TooManyAttemptsError
from threadline.channels.console.limits import ActionLimiter
from threadline.channels.console.masking import mask_data, mask_whole
from threadline.channels.console.operators import ALL_TENANTS, OperatorAccounts
from threadline.channels.console.operators import Operator as OperatorAccount
from threadline.channels.console.ports import (
    Appender,
    Auditor,
    Calls,
    ConversationLog,
    Delivery,
    PointInTime,
)
from threadline.channels.console.presence import OperatorPresence
from threadline.channels.console.reading import read_conversation
from threadline.channels.console.settings import ConsoleSettings
from threadline.channels.console.tenancy import ConversationTenants
from threadline.channels.console.timeline import build_timeline
from threadline.ledger.errors import ConversationNotFoundError
from threadline.projections.human import QueueIndex
from threadline.projections.human_metrics import HumanMetrics

STATIC = Path(__file__).parent / "static"
# What the login form itself needs before anyone is logged in.
PUBLIC_ASSETS = frozenset({"console.css", "login.js"})
PAGES = {"list": "index.html", "conversation": "conversation.html", "dashboard": "dashboard.html"}
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
}


class Console:
    """Everything the routes use, wired once by `mount`."""

    def __init__(
        self,
        *,
        log: ConversationLog,
        accounts: OperatorAccounts,
        settings: ConsoleSettings,
        auditor: Auditor | None = None,
        point_in_time: PointInTime | None = None,
        dashboard: Dashboard | None = None,
        ledger: Appender | None = None,
        presence: OperatorPresence | None = None,
        delivery: Delivery | None = None,
        calls: Calls | None = None,
    ) -> None:
        self.log = log
        # An operator's message to the visitor's SMS/WhatsApp/email legs (delivery.py).
        self.delivery = delivery
        # An operator on the visitor's voice call (takeover.py /call), when voice is wired.
        self.calls = calls
        # Taking over (channels/console/takeover.py): the only writes the console makes.
        self.ledger = ledger
        self.presence = presence
        self.queue = QueueIndex(log)
        self.human_metrics = HumanMetrics(log)
        self.limiter = ActionLimiter(settings.actions_per_minute)
        self.accounts = accounts
        self.settings = settings
        self.auditor = auditor
        self.point_in_time = point_in_time
        self.dashboard = dashboard
        self.catalog = Catalog(log)
        # The tenant check of per-conversation routes, without a read per request.
        self.tenants = ConversationTenants(log)
        # Only files that exist at start-up are served: no path from a URL reaches the disk.
        self.assets = {
            p.relative_to(STATIC).as_posix(): p for p in STATIC.rglob("*") if p.is_file()
        }


class Login(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


ConsoleDep = Annotated[Console, Depends(_console)]


async def _operator_record(request: Request, console: ConsoleDep) -> OperatorAccount:
    # FastAPI resolves a dependency once per request: `Operator` and `Scope` share this lookup.
    account = await run_in_threadpool(
        console.accounts.resolve_operator, request.cookies.get(auth.COOKIE)
    )
    if account is None:
        raise auth.deny(request, page=False)
    return account


OperatorRecord = Annotated[OperatorAccount, Depends(_operator_record)]


async def _operator(account: OperatorRecord) -> str:
    return account.name


def scope_of(account: OperatorAccount, settings: ConsoleSettings) -> str | None:
    """The tenant an operator sees (None: every tenant). An operator's own tenant wins; an
    operator made without one ('*') sees the console's configured tenant."""
    tenant = account.tenant if account.tenant != ALL_TENANTS else settings.tenant
    return None if tenant == ALL_TENANTS else tenant


async def _scope(account: OperatorRecord, console: ConsoleDep) -> str | None:
    return scope_of(account, console.settings)


async def _page_operator(request: Request, console: ConsoleDep) -> str:
    name = await run_in_threadpool(auth.operator_of, request, console.accounts)
    if name is None:
        raise auth.deny(request, page=True)
    return name


Operator = Annotated[str, Depends(_operator)]
Scope = Annotated[str | None, Depends(_scope)]
PageOperator = Annotated[str, Depends(_page_operator)]


def _error(status: int, error: str, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "detail": detail}, status_code=status, headers=SECURITY_HEADERS | headers
    )


def _mask(console: Console, mask: bool | None) -> bool:
    return console.settings.mask_pii_by_default if mask is None else mask


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / PAGES[name], media_type="text/html", headers=SECURITY_HEADERS)


def _bad_id(conversation_id: str) -> JSONResponse | None:
    if 1 <= len(conversation_id) <= 200 and conversation_id.isprintable():
        return None
    return _error(422, "invalid_input", "conversation id must be 1-200 printable characters")


def foreign(console: Console, tenant: str | None, conversation_id: str) -> JSONResponse | None:
    """404 for a conversation outside the operator's tenant: to them it does not exist (a 403
    would confirm that the id is taken)."""
    if tenant is None or console.tenants.tenant_of(conversation_id) == tenant:
        return None
    return _error(404, "not_found", f"no conversation {conversation_id!r}")


router = APIRouter(prefix="/console", include_in_schema=False)


# -- session -------------------------------------------------------------------------------


@router.post("/api/login")
async def login(request: Request, body: Login, console: ConsoleDep) -> Response:
    if not auth.same_origin(request):
        return _error(403, "forbidden", "cross-origin login refused")
    client = request.client.host if request.client else "unknown"
    try:
        token = await run_in_threadpool(console.accounts.login, body.name, body.password, client)
    except TooManyAttemptsError as exc:
        return _error(429, "rate_limited", str(exc), **{"Retry-After": str(exc.retry_after)})
    except AuthenticationFailedError as exc:
        return _error(401, "unauthenticated", str(exc))
    response = JSONResponse({"operator": body.name}, headers=SECURITY_HEADERS)
    response.set_cookie(
        auth.COOKIE,
        token,
        max_age=console.settings.session_ttl_seconds,
        path=auth.COOKIE_PATH,
        secure=console.settings.cookie_secure,
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/api/logout")
async def logout(request: Request, console: ConsoleDep, _: Operator) -> Response:
    if not auth.same_origin(request):
        return _error(403, "forbidden", "cross-origin logout refused")
    await run_in_threadpool(console.accounts.logout, request.cookies.get(auth.COOKIE))
    response = JSONResponse({"operator": None}, headers=SECURITY_HEADERS)
    response.delete_cookie(auth.COOKIE, path=auth.COOKIE_PATH)
    return response


@router.get("/api/me")
def me(operator: Operator, tenant: Scope, console: ConsoleDep) -> JSONResponse:
    return JSONResponse(
        {
            "operator": operator,
            "tenant": tenant,
            "mask_pii_by_default": console.settings.mask_pii_by_default,
        },
        headers=SECURITY_HEADERS,
    )


# -- pages and assets ----------------------------------------------------------------------


@router.get("")
@router.get("/")
def list_page(_: PageOperator) -> FileResponse:
    return _page("list")


@router.get("/conversations/{conversation_id}")
def conversation_page(conversation_id: str, _: PageOperator) -> FileResponse:
    return _page("conversation")


@router.get("/dashboard")
def dashboard_page(_: PageOperator) -> FileResponse:
    return _page("dashboard")


@router.get("/static/{path:path}")
async def asset(path: str, request: Request, console: ConsoleDep) -> Response:
    file = console.assets.get(path)
    if file is None or file.suffix == ".html":
        return _error(404, "not_found", "no such asset")
    if path not in PUBLIC_ASSETS:
        await _operator_record(request, console)
    return FileResponse(file, headers=SECURITY_HEADERS)


# -- data ------------------------------------------------------------------------------------


@router.get("/api/conversations")
def conversations(
    tenant: Scope,
    console: ConsoleDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    channel: Annotated[str | None, Query(max_length=32)] = None,
    date_from: date | None = None,
    date_to: date | None = None,
    subject: Annotated[str | None, Query(max_length=200)] = None,
    outcome: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(pattern="^(open|resolved)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**53)] = 0,
    mask: bool | None = None,
) -> JSONResponse:
    page = console.catalog.search(
        ListQuery(
            q, channel, date_from, date_to, subject, outcome, status, limit, offset, tenant=tenant
        )
    )
    items = page.items
    if _mask(console, mask):
        for item in items:
            item["subjects"] = [mask_whole(s) for s in item["subjects"]]
    quarantined = console.auditor.quarantined() if console.auditor is not None else []
    return JSONResponse(
        {
            "items": items,
            # damaged conversations, withheld from the global log (docs/integrity.md)
            "quarantined": [r.to_json() for r in quarantined],
            "total": page.total,
            "per_channel": page.per_channel,
            "per_status": page.per_status,
            "masked": _mask(console, mask),
        },
        headers=SECURITY_HEADERS,
    )


@router.get("/api/conversations/{conversation_id}/timeline")
def timeline(
    conversation_id: str, tenant: Scope, console: ConsoleDep, mask: bool | None = None
) -> JSONResponse:
    if bad := _bad_id(conversation_id) or foreign(console, tenant, conversation_id):
        return bad
    readout = read_conversation(console.log, conversation_id)
    if not readout.events and not readout.unreadable:
        return _error(404, "not_found", f"no conversation {conversation_id!r}")
    body = build_timeline(
        conversation_id, readout.events, mask=_mask(console, mask), unreadable=readout.unreadable
    )
    return JSONResponse(body, headers=SECURITY_HEADERS)


@router.get("/api/conversations/{conversation_id}/verify")
def verify(conversation_id: str, tenant: Scope, console: ConsoleDep) -> JSONResponse:
    if bad := _bad_id(conversation_id) or foreign(console, tenant, conversation_id):
        return bad
    if console.auditor is None:
        return _error(503, "unavailable", "the ledger audit is not wired")
    if console.log.version(conversation_id) == 0:
        return _error(404, "not_found", f"no conversation {conversation_id!r}")
    report = console.auditor.verify(conversation_id)
    return JSONResponse(report.to_json(), headers=SECURITY_HEADERS)


@router.get("/api/conversations/{conversation_id}/as-of")
def as_of(
    conversation_id: str,
    tenant: Scope,
    console: ConsoleDep,
    position: Annotated[int, Query(ge=1, le=2**53)],
    mask: bool | None = None,
) -> JSONResponse:
    if bad := _bad_id(conversation_id) or foreign(console, tenant, conversation_id):
        return bad
    if console.point_in_time is None:
        return _error(503, "unavailable", "point-in-time projections are not wired")
    readout = read_conversation(console.log, conversation_id, upto=position)
    if not readout.events:
        return _error(404, "not_found", f"no conversation {conversation_id!r}")
    state = dict(console.point_in_time.as_of(readout.events))
    body = {
        "conversation_id": conversation_id,
        "position": readout.events[-1].position,
        "unreadable": [p for p, _ in readout.unreadable],
        "projections": mask_data(state) if _mask(console, mask) else state,
    }
    return JSONResponse(json.loads(json.dumps(body, default=str)), headers=SECURITY_HEADERS)


@router.get("/api/conversations/{conversation_id}/audit.jsonl")
def audit_export(conversation_id: str, tenant: Scope, console: ConsoleDep) -> Response:
    """The ledger's audit export (stored envelopes, unmasked), which
    `threadline audit verify --file` checks without the database."""
    if bad := _bad_id(conversation_id) or foreign(console, tenant, conversation_id):
        return bad
    if console.auditor is None:
        return _error(503, "unavailable", "the ledger audit is not wired")
    try:
        lines = console.auditor.export_lines(conversation_id)
    except ConversationNotFoundError:
        return _error(404, "not_found", f"no conversation {conversation_id!r}")
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in conversation_id)
    return StreamingResponse(
        (line.encode("utf-8") + b"\n" for line in lines),
        media_type="application/x-ndjson",
        headers=SECURITY_HEADERS
        | {"Content-Disposition": f'attachment; filename="audit-{safe}.jsonl"'},
    )


@router.get("/api/metrics")
def metrics(tenant: Scope, console: ConsoleDep) -> JSONResponse:
    if console.dashboard is None:
        return _error(503, "unavailable", "the metrics projection is not wired")
    return JSONResponse(console.dashboard.figures(tenant), headers=SECURITY_HEADERS)


@router.get("/api/metrics/human")
def human_metrics(tenant: Scope, console: ConsoleDep) -> JSONResponse:
    """Handoff to a person: time to human, abandonment, re-verification, who resolved."""
    return JSONResponse(console.human_metrics.summary(tenant), headers=SECURITY_HEADERS)


@router.get("/api/metrics.csv")
def metrics_csv(tenant: Scope, console: ConsoleDep) -> Response:
    if console.dashboard is None:
        return _error(503, "unavailable", "the metrics projection is not wired")
    return Response(
        console.dashboard.csv(tenant),
        media_type="text/csv; charset=utf-8",
        headers=SECURITY_HEADERS
        | {"Content-Disposition": 'attachment; filename="handoff-metrics.csv"'},
    )


# -- wiring ----------------------------------------------------------------------------------


def _login_form(status: int) -> HTMLResponse:
    html = (STATIC / "login.html").read_text(encoding="utf-8")
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def install(app: FastAPI, console: Console) -> None:
    """Mounts the console on `app` (routes, its refusal handler, its state)."""
    app.state.console = console

    async def denied(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, auth.DeniedError)
        if exc.page:
            return _login_form(exc.status)
        return _error(exc.status, exc.error, exc.detail)

    app.add_exception_handler(auth.DeniedError, denied)
    app.include_router(router)
