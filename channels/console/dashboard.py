"""Handoff dashboard figures: the metrics projection, overall and per day.

No figure is computed here: the metrics projection (`projections.metrics`) is folded over the
whole global log for the totals and over each day's conversations for the series, so every
number on the dashboard is the projection's own number on the same data. The folds advance
with new events only; summaries are cached until the global log grows.
"""

from __future__ import annotations

import csv
import io
import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from threadline.channels.console.ports import ConversationLog, HandoffMetrics, MetricsAccumulator
from threadline.ledger.envelope import RecordedEvent

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


@dataclass(frozen=True, slots=True)
class Figure:
    """One number of the metrics projection: where it is in the projection's document."""

    id: str
    label: str
    path: str  # dotted path into the projection's output
    unit: str = ""  # "%" for a 0-1 rate, "s" for seconds, or "" for a count/score


@dataclass(frozen=True, slots=True)
class Chart:
    id: str
    title: str
    description: str
    figures: tuple[Figure, ...]
    unit: str = ""


FUNNEL = (
    Figure("offered", "Offered", "funnel.offered"),
    Figure("accepted", "Accepted", "funnel.accepted"),
    Figure("completed", "Completed", "funnel.completed"),
)
# The visitor's click is the acceptance; first audio is when the leg's first agent audio frame
# left the server (AgentSpoke.first_audio_at), so a silent leg has no latency at all.
LATENCY = (
    Figure(
        "latency_p50", "Click → first audio p50", "latency_seconds.click_to_first_audio.p50", "s"
    ),
    Figure(
        "latency_p95", "Click → first audio p95", "latency_seconds.click_to_first_audio.p95", "s"
    ),
)
RATES = (
    Figure("reverification_rate", "Re-verification rate", "reverification_rate", "%"),
    Figure(
        "post_switch_resolution_rate",
        "Post-switch resolution rate",
        "post_switch_resolution_rate",
        "%",
    ),
)
CSAT = (
    Figure("csat_with_switch", "CSAT with a channel switch", "csat_with_switch.mean"),
    Figure("csat_without_switch", "CSAT without a switch", "csat_without_switch.mean"),
)
# Shown in the overall table only.
EXTRA = (
    Figure("conversations", "Conversations", "conversations"),
    Figure(
        "switched_conversations", "Conversations with a channel switch", "switched_conversations"
    ),
    Figure("expired", "Handoffs expired", "funnel.expired"),
    Figure("declined", "Handoffs declined", "funnel.declined"),
    Figure("accept_rate", "Accept rate (accepted / offered)", "funnel.accept_rate", "%"),
    Figure("complete_rate", "Complete rate (completed / accepted)", "funnel.complete_rate", "%"),
    Figure("silent_voice_legs", "Voice legs that never produced audio", "silent_voice_legs"),
    Figure(
        "turn_p50",
        "Turn latency p50 (end of speech → agent audio)",
        "latency_seconds.turn.p50",
        "s",
    ),
    Figure("turn_p95", "Turn latency p95", "latency_seconds.turn.p95", "s"),
)
CHARTS = (
    Chart("funnel-over-time", "Offer → accept → complete, per day", "Handoffs per day.", FUNNEL),
    Chart(
        "latency",
        "Click → first audio latency",
        "From the visitor's accept to the voice agent's first audio, per day.",
        LATENCY,
        "s",
    ),
    Chart(
        "rates",
        "Re-verification and post-switch resolution",
        "Share of switched conversations, per day.",
        RATES,
        "%",
    ),
    Chart("csat", "CSAT: switched vs not switched", "Mean CSAT (1-5), per day.", CSAT),
)


def pick(document: Mapping[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def charts(figures: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The chart documents the page draws: the overall funnel as bars, the rest per day."""
    overall = figures["overall"]
    days = [s["day"] for s in figures["series"]]
    out: list[dict[str, Any]] = [
        {
            "id": "funnel",
            "kind": "bars",
            "title": "Offer → accept → complete",
            "description": "All handoffs in the log.",
            "unit": "",
            "x_label": "Step",
            "x": [f.label for f in FUNNEL],
            "series": [{"label": "Handoffs", "values": [pick(overall, f.path) for f in FUNNEL]}],
        }
    ]
    for chart in CHARTS:
        out.append(
            {
                "id": chart.id,
                "kind": "lines",
                "title": chart.title,
                "description": chart.description,
                "unit": chart.unit,
                "x_label": "Day",
                "x": days,
                "series": [
                    {
                        "label": f.label,
                        "values": [pick(s["metrics"], f.path) for s in figures["series"]],
                    }
                    for f in chart.figures
                ],
            }
        )
    return out


def overall_rows(overall: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {"id": f.id, "label": f.label, "unit": f.unit, "value": pick(overall, f.path)}
        for f in (*EXTRA[:2], *FUNNEL, *EXTRA[2:], *LATENCY, *RATES, *CSAT)
    ]


class _Fold:
    """The projection over one set of conversations: the total and one fold per day."""

    def __init__(self, metrics: HandoffMetrics) -> None:
        self.metrics = metrics
        self.overall = metrics.accumulator()
        self.days: dict[str, MetricsAccumulator] = {}
        self.cached_at = -1
        self.cached: dict[str, Any] = {}

    def add(self, events: list[RecordedEvent], day_of: Mapping[str, str]) -> None:
        self.overall.add(events)
        by_day: dict[str, list[RecordedEvent]] = defaultdict(list)
        for event in events:
            by_day[day_of[event.conversation_id]].append(event)
        for day, group in by_day.items():
            if day not in self.days:
                self.days[day] = self.metrics.accumulator()
            self.days[day].add(group)


class Dashboard:
    """Figures over every conversation and, for operators of one tenant, over that tenant's
    conversations only (a conversation's tenant is the one its ConversationStarted names)."""

    def __init__(self, log: ConversationLog, metrics: HandoffMetrics) -> None:
        self._log = log
        self._metrics = metrics
        self._lock = threading.Lock()
        self._after = 0
        self._all = _Fold(metrics)
        self._tenants: dict[str, _Fold] = {}
        self._day_of: dict[str, str] = {}
        self._tenant_of: dict[str, str] = {}

    def _catch_up_locked(self) -> None:
        while batch := self._log.read_all(after=self._after, limit=BATCH):
            by_tenant: dict[str, list[RecordedEvent]] = defaultdict(list)
            for event in batch:
                # A conversation belongs to the day (UTC) of its first event, and to the
                # tenant its ConversationStarted names.
                self._day_of.setdefault(event.conversation_id, event.occurred_at.date().isoformat())
                tenant = self._tenant_of.setdefault(
                    event.conversation_id, str(getattr(event.data, "tenant", "default"))
                )
                if tenant in self._tenants:
                    by_tenant[tenant].append(event)
            self._all.add(batch, self._day_of)
            for tenant, events in by_tenant.items():
                self._tenants[tenant].add(events, self._day_of)
            self._after = batch[-1].sequence

    def _tenant_fold_locked(self, tenant: str) -> _Fold:
        """A tenant's folds are made on first demand (one pass over the log read so far), so
        a console that serves every tenant folds each event only once overall and per day."""
        fold = self._tenants.get(tenant)
        if fold is None:
            fold = _Fold(self._metrics)
            after = 0
            while after < self._after and (batch := self._log.read_all(after=after, limit=BATCH)):
                mine = [
                    e
                    for e in batch
                    if e.sequence <= self._after
                    and self._tenant_of.get(e.conversation_id) == tenant
                ]
                if mine:
                    fold.add(mine, self._day_of)
                after = batch[-1].sequence
            self._tenants[tenant] = fold
        return fold

    def figures(self, tenant: str | None = None) -> dict[str, Any]:
        """Every conversation's figures, or one tenant's (an unknown tenant: empty folds)."""
        with self._lock:
            self._catch_up_locked()
            fold = self._all if tenant is None else self._tenant_fold_locked(tenant)
            if fold.cached_at != self._after:
                computed: dict[str, Any] = {
                    "sequence": self._after,
                    "overall": dict(fold.overall.summary()),
                    "series": [
                        {"day": day, "metrics": dict(fold.days[day].summary())}
                        for day in sorted(fold.days)
                    ],
                }
                computed["overall_rows"] = overall_rows(computed["overall"])
                computed["charts"] = charts(computed)
                fold.cached = computed
                fold.cached_at = self._after
            return fold.cached

    def csv(self, tenant: str | None = None) -> str:
        figures = self.figures(tenant)
        rows = [{"period": "all"} | flatten(figures["overall"])]
        rows += [{"period": s["day"]} | flatten(s["metrics"]) for s in figures["series"]]
        columns = ["period", *sorted({k for r in rows for k in r} - {"period"})]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
