"""Adapters from inner packages (projections, handoff) to the ports the HTTP surface uses
(`channels.ports`). Kept apart from `bootstrap` so each adapter is small and testable."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channels.errors import NotFound, ServiceUnavailable
from handoff.service import HandoffService
from ledger.envelope import RecordedEvent
from ledger.store import Ledger
from projections.context import build_context
from projections.identity import build_identity
from projections.prometheus import render
from projections.runner import Runner
from projections.transcript import build_transcript
from projections.views import MemoryMetricsView, MetricsView


class LedgerReadModels:
    """Per-conversation projections folded on demand from the conversation's stream (a read
    costs the same whatever the size of the store); cross-conversation metrics from the
    tracked read model that `metrics` (a runner) keeps up to date."""

    def __init__(
        self, ledger: Ledger, metrics: MetricsView | None = None, runner: Runner | None = None
    ) -> None:
        self._ledger = ledger
        self._metrics = metrics
        self._runner = runner

    def _events(self, conversation_id: str, upto: int | None) -> list[RecordedEvent]:
        events = self._ledger.read(conversation_id, upto=upto)
        if not events:
            raise NotFound("conversation not found")
        return events

    def context(self, conversation_id: str, upto: int | None = None) -> Mapping[str, Any]:
        return build_context(self._events(conversation_id, upto)).model_dump(mode="json")

    def transcript(self, conversation_id: str, upto: int | None = None) -> Mapping[str, Any]:
        return build_transcript(self._events(conversation_id, upto)).model_dump(mode="json")

    def identity(self, conversation_id: str, upto: int | None = None) -> Mapping[str, Any]:
        return build_identity(self._events(conversation_id, upto)).model_dump(mode="json")

    def handoff_metrics(self) -> Mapping[str, Any]:
        if self._metrics is None:
            raise ServiceUnavailable("the handoff metrics read model is not configured")
        return self._metrics.metrics().model_dump(mode="json")

    def metrics_text(self) -> str:
        if self._metrics is None:
            return ""
        lag = self._runner.lag() if self._runner is not None else None
        return render(self._metrics.metrics(), lag=lag)


def open_metrics_view(database_url: str) -> MetricsView:
    """The tracked handoff-metrics read model, in the deployment's database."""
    if database_url.startswith("memory://") or database_url == "sqlite:///:memory:":
        return MemoryMetricsView()
    if database_url.startswith("sqlite:///"):
        from projections.view_sqlite import open_sqlite_view

        return open_sqlite_view(database_url.removeprefix("sqlite:///"))
    from projections.view_postgres import open_postgres_view

    return open_postgres_view(database_url)


class HandoffAdapter:
    """The visitor clicked "Switch to voice": accept the offer, return the handoff ticket."""

    def __init__(self, service: HandoffService) -> None:
        self._service = service

    def accept(
        self, conversation_id: str, handoff_id: str | None, *, leg_id: str | None
    ) -> Mapping[str, Any]:
        ticket = self._service.request_handoff(
            conversation_id, "webrtc", handoff_id=handoff_id, leg_id=leg_id
        )
        return {
            "conversation_id": ticket.conversation_id,
            "handoff_id": ticket.handoff_id,
            "handoff_token": ticket.token,
            "expires_at": ticket.expires_at.isoformat(),
            "channel": ticket.channel,
            "level": ticket.level,
        }
