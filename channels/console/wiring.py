"""Builds the console from settings and mounts it on the application.

`mount(app, ledger, database_url)` is the one call the app factory makes; everything the
console needs from the inner packages is adapted here to the small ports in
`threadline.channels.console.ports`.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from threadline.channels.console import takeover
from threadline.channels.console.adapters import LedgerAudit, ProjectionsAsOf, ProjectionsMetrics
from threadline.channels.console.dashboard import Dashboard
from threadline.channels.console.operators import LoginThrottle, OperatorAccounts
from threadline.channels.console.operators_sql import SqlOperatorStore, open_operator_store
from threadline.channels.console.ports import (
    Auditor,
    Calls,
    ConversationLog,
    Delivery,
    HandoffMetrics,
    PointInTime,
)
from threadline.channels.console.presence import OperatorPresence
from threadline.channels.console.routes import Console, install
from threadline.channels.console.settings import ConsoleSettings
from threadline.ledger.store import Ledger

logger = logging.getLogger(__name__)


def open_accounts(
    database_url: str,
    settings: ConsoleSettings | None = None,
    *,
    failure_secret: bytes | None = None,
) -> OperatorAccounts:
    settings = settings or ConsoleSettings()
    store = open_operator_store(
        settings.operators_url or database_url, failure_secret=failure_secret
    )
    # On a SQL store the failures are counted in the database: one budget for all replicas.
    failures = store if isinstance(store, SqlOperatorStore) else None
    throttle = LoginThrottle(
        settings.login_max_failures, settings.login_window_seconds, failures=failures
    )
    return OperatorAccounts(store, settings.session_ttl_seconds, throttle)


def build_console(
    log: ConversationLog,
    database_url: str,
    *,
    settings: ConsoleSettings | None = None,
    auditor: Auditor | None = None,
    point_in_time: PointInTime | None = None,
    metrics: HandoffMetrics | None = None,
    delivery: Delivery | None = None,
    calls: Calls | None = None,
    failure_secret: bytes | None = None,
) -> Console:
    """Defaults: the ledger's own audit when `log` is the ledger store, and the projections
    for point-in-time replay and the handoff metrics."""
    settings = settings or ConsoleSettings()
    if auditor is None and isinstance(log, Ledger):
        auditor = LedgerAudit(log)
    accounts = open_accounts(database_url, settings, failure_secret=failure_secret)
    return Console(
        log=log,
        accounts=accounts,
        settings=settings,
        auditor=auditor,
        point_in_time=point_in_time or ProjectionsAsOf(),
        dashboard=Dashboard(log, metrics or ProjectionsMetrics()),
        ledger=log if isinstance(log, Ledger) else None,
        presence=OperatorPresence(accounts.store, settings.presence_ttl_seconds),
        delivery=delivery,
        calls=calls,
    )


def mount(
    app: FastAPI,
    log: ConversationLog,
    database_url: str,
    *,
    settings: ConsoleSettings | None = None,
    auditor: Auditor | None = None,
    point_in_time: PointInTime | None = None,
    metrics: HandoffMetrics | None = None,
    delivery: Delivery | None = None,
    calls: Calls | None = None,
    failure_secret: bytes | None = None,
) -> Console:
    """Mounts the console under /console on `app`; the one call an app factory makes."""
    console = build_console(
        log,
        database_url,
        settings=settings,
        auditor=auditor,
        point_in_time=point_in_time,
        metrics=metrics,
        delivery=delivery,
        calls=calls,
        failure_secret=failure_secret,
    )
    install(app, console)
    app.include_router(takeover.router)
    if not console.accounts.store.list_operators():
        logger.warning(
            "the operator console is at /console; nobody can sign in until an operator "
            "exists: threadline operators create NAME"
        )
    return console
