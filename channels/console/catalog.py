"""The conversation list: one summary per conversation, folded from the global log.

Kept in memory and caught up from `Ledger.read_all` on each use (only events after the last
sequence seen are read), so listing costs nothing per request beyond the new events.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from threadline.ledger.envelope import RecordedEvent

CHANNELS = ("chat", "webrtc", "sms", "whatsapp", "pstn", "email")


class GlobalLog(Protocol):
    def read_all(self, after: int = 0, limit: int = 500) -> list[RecordedEvent]: ...


@dataclass(slots=True)
class ConversationSummary:
    conversation_id: str
    started_at: datetime
    last_at: datetime
    version: int = 0
    tenant: str = "default"
    first_channel: str | None = None
    channels: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    outcome: str | None = None
    handoffs_offered: int = 0
    handoffs_completed: int = 0
    csat: int | None = None

    @property
    def status(self) -> str:
        return "resolved" if self.outcome is not None else "open"

    def apply(self, event: RecordedEvent) -> None:
        self.version = max(self.version, event.position)
        self.last_at = max(self.last_at, event.occurred_at)
        data = event.data
        channel = getattr(data, "channel", None)
        if event.type in ("ConversationStarted", "LegOpened") and isinstance(channel, str):
            if self.first_channel is None:
                self.first_channel = channel
            if channel not in self.channels:
                self.channels.append(channel)
        if event.type == "ConversationStarted":
            self.tenant = str(getattr(data, "tenant", self.tenant))
        elif event.type == "IdentityVerified":
            subject = str(getattr(data, "subject", ""))
            if subject and subject not in self.subjects:
                self.subjects.append(subject)
        elif event.type == "ConversationResolved":
            self.outcome = str(getattr(data, "outcome", "resolved"))
        elif event.type == "HandoffOffered":
            self.handoffs_offered += 1
        elif event.type == "HandoffCompleted":
            self.handoffs_completed += 1
        elif event.type == "CSATRecorded":
            self.csat = int(getattr(data, "score", 0)) or None

    def to_json(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "started_at": self.started_at.isoformat(),
            "last_at": self.last_at.isoformat(),
            "version": self.version,
            "tenant": self.tenant,
            "first_channel": self.first_channel,
            "channels": list(self.channels),
            "subjects": list(self.subjects),
            "outcome": self.outcome,
            "status": self.status,
            "handoffs_offered": self.handoffs_offered,
            "handoffs_completed": self.handoffs_completed,
            "csat": self.csat,
        }


@dataclass(frozen=True, slots=True)
class Query:
    """Filters of the list; every given filter must hold (AND)."""

    conversation_id: str | None = None  # substring, case-insensitive
    channel: str | None = None
    date_from: date | None = None  # on the start date, inclusive
    date_to: date | None = None
    subject: str | None = None  # substring of a verified subject, case-insensitive
    outcome: str | None = None
    status: str | None = None  # open | resolved
    limit: int = 50
    offset: int = 0
    tenant: str | None = None  # the operator's tenant; None: every tenant

    def matches(self, s: ConversationSummary) -> bool:
        day = s.started_at.date()
        return (
            (self.tenant is None or s.tenant == self.tenant)
            and (
                not self.conversation_id
                or self.conversation_id.lower() in s.conversation_id.lower()
            )
            and (not self.channel or self.channel in s.channels)
            and (self.date_from is None or day >= self.date_from)
            and (self.date_to is None or day <= self.date_to)
            and (
                not self.subject or any(self.subject.lower() in subj.lower() for subj in s.subjects)
            )
            and (not self.outcome or s.outcome == self.outcome)
            and (not self.status or s.status == self.status)
        )


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    per_channel: dict[str, int]
    per_status: dict[str, int]


class Catalog:
    def __init__(self, log: GlobalLog, batch: int = 500) -> None:
        self._log = log
        self._batch = batch
        self._lock = threading.Lock()
        self._after = 0
        self._summaries: dict[str, ConversationSummary] = {}

    def _apply_locked(self, events: Iterable[RecordedEvent]) -> None:
        for event in events:
            summary = self._summaries.get(event.conversation_id)
            if summary is None:
                summary = ConversationSummary(
                    event.conversation_id, event.occurred_at, event.occurred_at
                )
                self._summaries[event.conversation_id] = summary
            summary.apply(event)
            self._after = max(self._after, event.sequence)

    def catch_up(self) -> None:
        with self._lock:
            while True:
                batch = self._log.read_all(after=self._after, limit=self._batch)
                if not batch:
                    return
                self._apply_locked(batch)

    def conversation_ids(self) -> list[str]:
        self.catch_up()
        with self._lock:
            return list(self._summaries)

    def get(self, conversation_id: str) -> dict[str, Any] | None:
        self.catch_up()
        with self._lock:
            summary = self._summaries.get(conversation_id)
            return summary.to_json() if summary else None

    def search(self, query: Query) -> Page:
        """Summaries are serialised under the lock, so a concurrent catch-up never shows a
        half-applied conversation."""
        self.catch_up()
        with self._lock:
            found = [s for s in self._summaries.values() if query.matches(s)]
            found.sort(key=lambda s: (s.last_at, s.conversation_id), reverse=True)
            per_channel = Counter(ch for s in found for ch in s.channels)
            per_status = Counter(s.status for s in found)
            items = [s.to_json() for s in found[query.offset : query.offset + query.limit]]
        return Page(
            items=items,
            total=len(found),
            per_channel={ch: per_channel.get(ch, 0) for ch in CHANNELS}
            | {ch: n for ch, n in per_channel.items() if ch not in CHANNELS},
            per_status={
                "open": per_status.get("open", 0),
                "resolved": per_status.get("resolved", 0),
            },
        )
