"""The eventsourcing aggregate used as the "raw eventsourcing" application baseline in
benchmarks/ledger.py (its events must live in an importable module: eventsourcing stores
their topics)."""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event


class Conversation(Aggregate):
    @event("Posted")
    def post(self, role: str, text: str) -> None:
        self.last = (role, text)
