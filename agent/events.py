"""Event types the language-model port adds to the ledger (see docs/events.md).

`ModelFallbackUsed`: the configured provider failed, timed out or answered with something
unusable, and the offline grounded generator's output was used instead. Recorded next to
the output it replaced, so a fallback is never a silent error and never a guessed output.
`HandoffSummaryWritten`: the short summary an operator reads when a visitor asks for a
person, with the generator that wrote it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from threadline.ledger import events as ledger_events
from threadline.ledger import privacy
from threadline.ledger.events import EventData

ModelUse = Literal["reply", "first_utterance", "summary"]


class ModelFallbackUsed(EventData):
    use: ModelUse
    provider: str = Field(min_length=1, max_length=64)  # the generator that failed
    model: str | None = Field(default=None, max_length=200)
    # A machine-readable cause: timeout, connection, http_503, invalid_output, …
    reason: str = Field(min_length=1, max_length=200)
    fallback: str = Field(default="offline", min_length=1, max_length=64)
    at: datetime


class HandoffSummaryWritten(EventData):
    audience: Literal["operator"] = "operator"
    text: str = Field(min_length=1, max_length=2000)
    generator: str = Field(min_length=1, max_length=64)  # offline | openai


def fallback_event(
    provider: object, use: ModelUse, exc: Exception, at: datetime
) -> ModelFallbackUsed:
    """The record of `provider` failing with `exc` (its `reason`, if it has one)."""
    return ModelFallbackUsed(
        use=use,
        provider=str(getattr(provider, "name", "unknown"))[:64],
        model=getattr(provider, "model", None),
        reason=str(getattr(exc, "reason", type(exc).__name__))[:200],
        at=at,
    )


def register_events() -> None:
    """Registers the types above with the ledger; idempotent. Called by the composition
    root (`threadline.app.events.register_event_types`)."""
    ledger_events.register(ModelFallbackUsed)
    privacy.declare("ModelFallbackUsed")  # provider names and causes, no personal data
    ledger_events.register(HandoffSummaryWritten)
    privacy.declare("HandoffSummaryWritten", ["text"])  # restates the visitor's words
