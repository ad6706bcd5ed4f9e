"""Adapters from inner packages (projections, handoff) to the ports the HTTP surface uses
(`channels.ports`). Kept apart from `bootstrap` so each adapter is small and testable."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channels.errors import NotFound, ServiceUnavailable
from handoff.service import HandoffService
from ledger.envelope import RecordedEvent
from ledger.events import HandoffChannel
from ledger.store import Ledger
from projections.context import build_context
from projections.identity import build_identity
from projections.service import MetricsService
from projections.transcript import build_transcript


class LedgerReadModels:
    """Per-conversation projections folded on demand from the conversation's stream (a read
    costs the same whatever the size of the store); cross-conversation metrics from the
    tracked read model that `metrics` (a runner) keeps up to date."""

    def __init__(self, ledger: Ledger, metrics: MetricsService | None = None) -> None:
        self._ledger = ledger
        self._metrics = metrics

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
        return self._metrics.handoff_metrics()

    def metrics_text(self) -> str:
        if self._metrics is None:
            return ""
        return self._metrics.prometheus_text()


class HandoffAdapter:
    """The visitor clicked "Switch to voice": accept the offer, return the handoff ticket."""

    def __init__(self, service: HandoffService) -> None:
        self._service = service

    def accept(
        self,
        conversation_id: str,
        handoff_id: str | None,
        *,
        leg_id: str | None,
        channel: HandoffChannel = "webrtc",
    ) -> Mapping[str, Any]:
        ticket = self._service.request_handoff(
            conversation_id, channel, handoff_id=handoff_id, leg_id=leg_id
        )
        return {
            "conversation_id": ticket.conversation_id,
            "handoff_id": ticket.handoff_id,
            "handoff_token": ticket.token,
            "expires_at": ticket.expires_at.isoformat(),
            "channel": ticket.channel,
            "level": ticket.level,
        }
