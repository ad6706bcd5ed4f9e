"""`/v1/metrics/handoff` per tenant: the same fold as the global read model
(`threadline.projections.metrics`), kept once per tenant so that a key sees only the figures
of its own tenant's conversations.

Follows the global log incrementally from where the previous call stopped (the first call in
a process reads it all); a conversation's tenant is taken from its ConversationStarted, which
precedes its other events in the log. Memory grows with the number of conversations, like the
read model's tables. (A tenant dimension in the projections' read model would replace this.)
"""

from __future__ import annotations

import threading
from typing import Protocol

from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.events import ConversationStarted
from threadline.projections.metrics import (
    HandoffMetrics,
    MetricsState,
    apply_event,
    state_latencies,
    summarise,
)

PAGE = 500


class GlobalLog(Protocol):
    def read_all(self, after: int = 0, limit: int = 500) -> list[RecordedEvent]: ...


class TenantMetrics:
    def __init__(self, log: GlobalLog) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._after = 0
        self._tenant_of: dict[str, str] = {}
        self._states: dict[str, MetricsState] = {}

    def metrics(self, tenant: str) -> HandoffMetrics:
        """Blocking (reads the ledger): call from a worker thread."""
        with self._lock:
            self._catch_up()
            state = self._states.get(tenant) or MetricsState()
            return summarise(state.totals, state_latencies(state.handoffs.values()), self._after)

    def _catch_up(self) -> None:
        while True:
            batch = self._log.read_all(after=self._after, limit=PAGE)
            if not batch:
                return
            for e in batch:
                if isinstance(e.data, ConversationStarted):
                    self._tenant_of.setdefault(e.conversation_id, e.data.tenant)
                tenant = self._tenant_of.get(e.conversation_id)
                if tenant is not None:
                    apply_event(self._states.setdefault(tenant, MetricsState()), e)
            self._after = batch[-1].sequence
