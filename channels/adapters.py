"""Adapters from inner packages (projections, handoff) to the ports the HTTP surface uses
(`threadline.channels.ports`). Kept apart from `bootstrap` so each adapter is small and testable."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from threadline.access.errors import NotFoundError, ServiceUnavailableError
from threadline.handoff.service import HandoffService
from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.events import HandoffChannel
from threadline.ledger.store import Ledger
from threadline.projections.identity import build_identity
from threadline.projections.metrics import METRICS_DATA_TYPES
from threadline.projections.service import MetricsService
from threadline.projections.snapshots import ContextSnapshots
from threadline.projections.transcript import build_transcript


class LedgerReadModels:
    """Per-conversation projections folded on demand from the conversation's stream (a read
    costs the same whatever the size of the store); cross-conversation metrics from the
    tracked read model that `metrics` (a runner) keeps up to date. The agent context folds
    from checked snapshots (`projections.snapshots`): equal to the fold from position 1."""

    def __init__(
        self,
        ledger: Ledger,
        metrics: MetricsService | None = None,
        snapshots: ContextSnapshots | None = None,
    ) -> None:
        self._ledger = ledger
        self._metrics = metrics
        self.snapshots = snapshots or ContextSnapshots(ledger)

    def _events(self, conversation_id: str, upto: int | None) -> list[RecordedEvent]:
        events = self._ledger.read(conversation_id, upto=upto)
        if not events:
            raise NotFoundError("conversation not found")
        return events

    def context(self, conversation_id: str, upto: int | None = None) -> Mapping[str, Any]:
        context = self.snapshots.context(conversation_id, upto)
        if context is None:
            raise NotFoundError("conversation not found")
        return context.model_dump(mode="json")

    def transcript(self, conversation_id: str, upto: int | None = None) -> Mapping[str, Any]:
        return build_transcript(self._events(conversation_id, upto)).model_dump(mode="json")

    def identity(self, conversation_id: str, upto: int | None = None) -> Mapping[str, Any]:
        return build_identity(self._events(conversation_id, upto)).model_dump(mode="json")

    def handoff_metrics(self) -> Mapping[str, Any]:
        if self._metrics is None:
            raise ServiceUnavailableError("the handoff metrics read model is not configured")
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


class ThrottledWakeLog:
    """The ledger as the metrics runner sees it, with wake-ups thinned out to at most one
    per `min_interval_s`. Woken on every append, the runner commits its view about as often
    as the API appends — on SQLite a second fsync'd writer competing for the one write lock
    (measured: ~35% fewer HTTP appends/s). Thinned, the view trails by at most the runner's
    poll interval, which is plenty for metrics."""

    def __init__(self, ledger: Ledger, min_interval_s: float = 0.25) -> None:
        self._ledger = ledger
        self._min_interval_s = min_interval_s

    def read_all(self, after: int = 0, limit: int = 500) -> list[RecordedEvent]:
        # Only the types the metrics fold reads the data of are decoded (decoding every
        # event was ~6-10% of a busy server's CPU, docs/performance.md).
        return self._ledger.read_all(after=after, limit=limit, decode=METRICS_DATA_TYPES)

    def max_sequence(self) -> int:
        return self._ledger.max_sequence()

    def subscribe(self, listener: Callable[[list[RecordedEvent]], None]) -> Callable[[], None]:
        last = [float("-inf")]
        lock = threading.Lock()

        def thinned(events: Sequence[RecordedEvent]) -> None:
            now = time.monotonic()
            with lock:
                if now - last[0] < self._min_interval_s:
                    return
                last[0] = now
            listener(list(events))

        return self._ledger.subscribe(thinned)
