"""What the console needs from the inner packages, as small interfaces.

`channels.console.wiring` plugs in the real ledger, its audit and the projections; unit tests
can plug fakes. Every port is read-only but `Appender`, which takeover routes use.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from threadline.ledger.envelope import AppendResult, NewEvent, RecordedEvent


class ConversationLog(Protocol):
    """The read side of `threadline.ledger.store.Ledger`."""

    def read(
        self,
        conversation_id: str,
        after: int = 0,
        upto: int | None = None,
        limit: int | None = None,
    ) -> list[RecordedEvent]: ...

    def read_all(self, after: int = 0, limit: int = 500) -> list[RecordedEvent]: ...

    def version(self, conversation_id: str) -> int: ...


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The hash-chain check of one conversation. `first_broken` is None when it verifies."""

    conversation_id: str
    checked: int
    first_broken: int | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.first_broken is None

    def to_json(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "ok": self.ok,
            "checked": self.checked,
            "first_broken": self.first_broken,
            "reason": self.reason,
        }


class Auditor(Protocol):
    def verify(self, conversation_id: str) -> ChainReport: ...

    def quarantined(self) -> list[ChainReport]:
        """Conversations this process withholds from the global log because a record of theirs
        does not decode (ledger quarantine, issue 17 class 4), each at its first bad record."""

    def export_lines(self, conversation_id: str) -> Iterator[str]:
        """The audit export: one canonical JSON envelope per line, verifiable offline by
        `threadline audit verify --file`."""


class PointInTime(Protocol):
    """The conversation's projections as of a position (what the CLI's `--as-of` shows)."""

    def as_of(self, events: Sequence[RecordedEvent]) -> Mapping[str, Any]: ...


class MetricsAccumulator(Protocol):
    """One running fold of the metrics projection (over the whole log, or one day of it)."""

    def add(self, events: Sequence[RecordedEvent]) -> None: ...

    def summary(self) -> Mapping[str, Any]: ...


class HandoffMetrics(Protocol):
    """The metrics projection: hands out fresh folds, so that the dashboard can keep one for
    the whole log and one per day, each updated with new events only."""

    def accumulator(self) -> MetricsAccumulator: ...


class Appender(Protocol):
    """The one write the console makes: an operator's takeover events, at a version."""

    def append(
        self, conversation_id: str, event: NewEvent, expected_version: int | None = None
    ) -> AppendResult: ...

    # An operator's call offer that supersedes the AI's open one: both or neither.
    def append_batch(
        self,
        conversation_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None = None,
    ) -> list[AppendResult]: ...


class Delivery(Protocol):
    """Carries an operator's recorded message to the visitor's other legs (SMS, WhatsApp,
    email); the widget reads the same stream and needs nothing. Returns, per leg it tried,
    (channel, None) when handed to the provider/relay or (channel, why not)."""

    async def deliver(
        self, conversation_id: str, text: str, event_id: UUID
    ) -> list[tuple[str, str | None]]: ...


class Calls(Protocol):
    """A person on the visitor's live WebRTC call (channels/voice/bridge.py CallBridges)."""

    async def join(
        self, conversation_id: str, operator: str, sdp: str, sdp_type: str
    ) -> tuple[str, str]:
        """(leg id, answer SDP); raises CallNotBridgeableError / InvalidOfferError."""

    async def leave(self, conversation_id: str) -> tuple[str, str] | None:
        """(leg id, operator) of the bridge taken down, or None when nobody was on."""
