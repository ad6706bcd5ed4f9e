"""The inner packages behind the console's ports: the ledger's audit and the projections.

Kept apart from the routes so that the console's web layer depends only on `ports`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from threadline.channels.console.ports import ChainReport
from threadline.ledger import audit
from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.errors import ConversationNotFoundError, IntegrityViolationError
from threadline.ledger.store import Ledger
from threadline.projections.context import build_context
from threadline.projections.identity import build_identity
from threadline.projections.metrics import MetricsState, fold_metrics, state_latencies, summarise
from threadline.projections.transcript import build_transcript


class LedgerAudit:
    """`threadline.ledger.audit`: the same hash-chain check and export as `threadline audit`."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def verify(self, conversation_id: str) -> ChainReport:
        try:
            checked = audit.verify_conversation(self._ledger, conversation_id)
        except IntegrityViolationError as exc:
            return ChainReport(conversation_id, exc.position - 1, exc.position, exc.reason)
        return ChainReport(conversation_id, checked, None, None)

    def quarantined(self) -> list[ChainReport]:
        return [
            ChainReport(cid, exc.position - 1, exc.position, exc.reason)
            for cid, exc in sorted(self._ledger.quarantined().items())
        ]

    def export_lines(self, conversation_id: str) -> Iterator[str]:
        """Raises ConversationNotFoundError (before yielding anything) for an unknown id."""
        if self._ledger.version(conversation_id) == 0:
            raise ConversationNotFoundError(f"conversation {conversation_id} does not exist")
        return audit.export_lines(self._ledger, conversation_id)


class ProjectionsAsOf:
    """The projections `threadline replay --as transcript|context|identity --upto N` shows,
    folded from the events up to the chosen position."""

    def as_of(self, events: Sequence[RecordedEvent]) -> Mapping[str, Any]:
        return {
            "transcript": build_transcript(events).model_dump(mode="json"),
            "identity": build_identity(events).model_dump(mode="json"),
            "context": build_context(events).model_dump(mode="json"),
        }


class ProjectionsMetricsFold:
    """`threadline.projections.metrics` folded incrementally: the same state, totals and summary as
    `build_metrics` and the tracked read models."""

    def __init__(self) -> None:
        self._state = MetricsState()
        self._position = 0

    def add(self, events: Sequence[RecordedEvent]) -> None:
        fold_metrics(events, self._state)
        self._position = max([self._position, *(e.sequence for e in events)])

    def summary(self) -> Mapping[str, Any]:
        latencies = state_latencies(self._state.handoffs.values())
        return summarise(self._state.totals, latencies, self._position).model_dump(mode="json")


class ProjectionsMetrics:
    def accumulator(self) -> ProjectionsMetricsFold:
        return ProjectionsMetricsFold()
