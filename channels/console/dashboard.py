"""Handoff dashboard figures: the metrics projection, overall and per day.

The figures are never computed here: the metrics projection (`projections`) is run on the
whole global log for the totals and on each day's conversations for the series, so every
number on the dashboard is the projection's own number on the same data. Results are cached
until the global log grows.
"""

from __future__ import annotations

import csv
import io
import threading
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from channels.console.ports import ConversationLog, HandoffMetrics
from ledger.envelope import RecordedEvent

BATCH = 500


def flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping → {"a.b": scalar}; lists are kept whole (CSV shows them as JSON)."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            out |= flatten(item, name + ".")
        else:
            out[name] = item
    return out


class Dashboard:
    def __init__(self, log: ConversationLog, metrics: HandoffMetrics) -> None:
        self._log = log
        self._metrics = metrics
        self._lock = threading.Lock()
        self._events: list[RecordedEvent] = []
        self._after = 0
        self._cached_at = -1
        self._cached: dict[str, Any] = {}

    def _catch_up_locked(self) -> None:
        while batch := self._log.read_all(after=self._after, limit=BATCH):
            self._events.extend(batch)
            self._after = batch[-1].sequence

    def figures(self) -> dict[str, Any]:
        with self._lock:
            self._catch_up_locked()
            if self._cached_at != self._after:
                self._cached = self._compute_locked()
                self._cached_at = self._after
            return self._cached

    def _compute_locked(self) -> dict[str, Any]:
        # A conversation belongs to the day (UTC) of its first event.
        day_of: dict[str, str] = {}
        by_day: dict[str, list[RecordedEvent]] = defaultdict(list)
        for event in self._events:
            day = day_of.setdefault(event.conversation_id, event.occurred_at.date().isoformat())
            by_day[day].append(event)
        return {
            "sequence": self._after,
            "overall": dict(self._metrics.compute(self._events)),
            "series": [
                {"day": day, "metrics": dict(self._metrics.compute(by_day[day]))}
                for day in sorted(by_day)
            ],
        }

    def csv(self) -> str:
        figures = self.figures()
        rows = [{"period": "all"} | flatten(figures["overall"])]
        rows += [{"period": s["day"]} | flatten(s["metrics"]) for s in figures["series"]]
        columns = ["period", *sorted({k for r in rows for k in r} - {"period"})]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
