"""Handoff to a person, measured: time to human, abandonment while queued, re-verification
after a person took over (the goal is 0), and resolution and CSAT by who resolved.

Kept apart from `projections.metrics` (the channel-switch funnel) so that each can change
without the other; both are pure folds of the same events. "Who resolved" is the last kind
of help the conversation had: `person` when an operator joined, `ai_voice` when the AI
carried on by voice (a completed handoff), `ai` otherwise.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from threadline.ledger import events as ev
from threadline.ledger.envelope import RecordedEvent
from threadline.projections.identity import is_reverification
from threadline.projections.metrics import latency, ratio

Resolver = Literal["ai", "ai_voice", "person"]
RESOLVERS: tuple[Resolver, ...] = ("ai", "ai_voice", "person")


@dataclass(slots=True)
class HumanFacts:
    """One conversation, as far as handing it to a person goes."""

    requested_at: datetime | None = None  # the request still waiting, if any
    requests: int = 0
    waits: list[float] = field(default_factory=list)  # seconds, one per answered request
    abandoned: int = 0
    joined: bool = False
    voice: bool = False
    reverified_after_join: bool = False
    level: int = 0
    open_legs: int = 0
    resolved: bool = False
    csat: int | None = None

    @property
    def resolver(self) -> Resolver:
        return "person" if self.joined else "ai_voice" if self.voice else "ai"


def fold_human_facts(f: HumanFacts, e: RecordedEvent) -> None:
    d = e.data
    if isinstance(d, ev.LegOpened):
        f.open_legs += 1
    elif isinstance(d, ev.LegClosed):
        f.open_legs = max(0, f.open_legs - 1)
        if f.open_legs == 0 and f.requested_at is not None:
            f.abandoned += 1  # the visitor left while waiting for a person
            f.requested_at = None
    elif isinstance(d, ev.HumanRequested):
        if f.requested_at is None:
            f.requested_at = d.requested_at
            f.requests += 1
    elif isinstance(d, ev.OperatorJoined):
        if f.requested_at is not None:
            f.waits.append(max(0.0, (d.joined_at - f.requested_at).total_seconds()))
            f.requested_at = None
        f.joined = True
    elif isinstance(d, ev.HandoffCompleted):
        f.voice = True
    elif isinstance(d, ev.IdentityVerified | ev.VerificationFailed):
        if f.joined and is_reverification(f.level, d):
            f.reverified_after_join = True
        if isinstance(d, ev.IdentityVerified):
            f.level = max(f.level, d.level)
    elif isinstance(d, ev.ConversationResolved):
        f.resolved = True
    elif isinstance(d, ev.CSATRecorded):
        f.csat = d.score


def summarise_human(facts: Iterable[HumanFacts]) -> dict[str, Any]:
    facts = list(facts)
    asked = [f for f in facts if f.requests]
    waits = [w for f in asked for w in f.waits]
    requests = sum(f.requests for f in asked)
    abandoned = sum(f.abandoned for f in asked)
    joined = [f for f in facts if f.joined]
    by: dict[str, Any] = {}
    for who in RESOLVERS:
        group = [f for f in facts if f.resolver == who]
        scores = [f.csat for f in group if f.csat is not None]
        by[who] = {
            "conversations": len(group),
            "resolved": sum(f.resolved for f in group),
            "resolution_rate": ratio(sum(f.resolved for f in group), len(group)),
            "csat_mean": sum(scores) / len(scores) if scores else None,
            "csat_count": len(scores),
        }
    reverified = sum(f.reverified_after_join for f in joined)
    return {
        "requests": requests,
        "answered": len(waits),
        "waiting": sum(f.requested_at is not None for f in asked),
        "time_to_human_seconds": latency(waits).model_dump(mode="json"),
        "abandoned_while_queued": abandoned,
        "abandonment_rate": ratio(abandoned, requests),
        "taken_over": len(joined),
        "reverified_after_transfer": reverified,
        "reverification_on_transfer_rate": ratio(reverified, len(joined)),
        "by_resolver": by,
    }


class GlobalLog(Protocol):
    def read_all(self, after: int = 0, limit: int = 500) -> list[RecordedEvent]: ...


class HumanMetrics:
    """The fold over the whole log, caught up with new events on each use."""

    def __init__(self, log: GlobalLog) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._after = 0
        self._facts: dict[str, HumanFacts] = {}
        self._tenant_of: dict[str, str] = {}

    def summary(self, tenant: str | None = None) -> dict[str, Any]:
        """Over every conversation, or over one tenant's (from its ConversationStarted)."""
        with self._lock:
            while batch := self._log.read_all(after=self._after, limit=500):
                for e in batch:
                    self._after = max(self._after, e.sequence)
                    self._tenant_of.setdefault(
                        e.conversation_id, str(getattr(e.data, "tenant", "default"))
                    )
                    fold_human_facts(self._facts.setdefault(e.conversation_id, HumanFacts()), e)
            facts = (
                self._facts.values()
                if tenant is None
                else [f for c, f in self._facts.items() if self._tenant_of.get(c) == tenant]
            )
            result = summarise_human(facts)
            result["sequence"] = self._after
            return result
