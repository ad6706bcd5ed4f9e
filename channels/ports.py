"""The small interfaces the HTTP surface depends on; `threadline.app.bootstrap` plugs the real
implementations (ledger store, projections, the chat agent, the handoff service) into them.

Routes only ever see these, so a provider can change without touching the API, and unit tests
can use fakes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from uuid import UUID

from threadline.ledger.envelope import AppendResult, NewEvent, RecordedEvent
from threadline.ledger.events import HandoffChannel


class ReadModels(Protocol):
    """Projections as JSON-ready documents (from `projections/`)."""

    def transcript(self, conversation_id: str, upto: int | None = None) -> Mapping[str, Any]: ...

    def context(self, conversation_id: str, upto: int | None = None) -> Mapping[str, Any]: ...

    def identity(self, conversation_id: str, upto: int | None = None) -> Mapping[str, Any]: ...

    def handoff_metrics(self) -> Mapping[str, Any]: ...

    def metrics_text(self) -> str:
        """Prometheus text lines for the handoff metrics ("" if none)."""
        ...


class TurnResult(Protocol):
    """What one visitor chat turn produced. `position` is the visitor message's position;
    `duplicate`: the message id was seen before (the recorded reply is returned)."""

    @property
    def position(self) -> int: ...

    @property
    def reply(self) -> str | None: ...

    @property
    def duplicate(self) -> bool: ...

    @property
    def handoff_offered(self) -> str | None: ...


class ChatTurns(Protocol):
    """Runs one visitor chat turn: records the visitor's message (idempotent on
    `message_id`), runs the agent, which records its own steps, and returns the reply."""

    def visitor_turn(
        self, conversation_id: str, text: str, *, leg_id: str | None, message_id: UUID
    ) -> TurnResult: ...


class Handoffs(Protocol):
    """Accepts a handoff offer on behalf of the visitor (or, with no `handoff_id`, records
    the visitor's own request); the result (a handoff token for the voice leg) goes back to
    the widget as JSON."""

    def accept(
        self,
        conversation_id: str,
        handoff_id: str | None,
        *,
        leg_id: str | None,
        channel: HandoffChannel = "webrtc",
    ) -> Mapping[str, Any]: ...


class ConversationStore(Protocol):
    """The subset of `threadline.ledger.store.Ledger` a messaging channel uses."""

    def append_batch(
        self, conversation_id: str, events: Sequence[NewEvent], expected_version: int | None = None
    ) -> list[AppendResult]: ...

    def read(
        self,
        conversation_id: str,
        after: int = 0,
        upto: int | None = None,
        limit: int | None = None,
    ) -> list[RecordedEvent]: ...


class TurnOutcome(Protocol):
    @property
    def reply(self) -> str | None: ...

    @property
    def duplicate(self) -> bool: ...


class VisitorTurns(Protocol):
    """The chat agent as a text channel sees it (same shape as `ChatTurns`): records the
    visitor's message idempotently on `message_id`, runs the agent, returns its reply."""

    def visitor_turn(
        self, conversation_id: str, text: str, *, leg_id: str | None, message_id: UUID
    ) -> TurnOutcome: ...
