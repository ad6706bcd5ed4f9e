"""Operator presence as the chat turn path sees it: how many people are available now.

Backed by the operator store's presence table, so every replica counts the same operators;
an operator who stops re-announcing (closed the page) drops out after the TTL.
"""

from __future__ import annotations

from datetime import timedelta

from threadline.channels.console.operators import Clock, OperatorStore, utcnow


class OperatorPresence:
    def __init__(self, store: OperatorStore, ttl_seconds: int, clock: Clock = utcnow) -> None:
        self._store = store
        self._ttl = timedelta(seconds=ttl_seconds)
        self._clock = clock

    def set(self, name: str, tenant: str, available: bool) -> None:
        self._store.set_presence(name, tenant, available, self._clock())

    def available(self, tenant: str | None) -> list[str]:
        return self._store.available_operators(tenant, self._clock() - self._ttl)

    def available_count(self, tenant: str | None) -> int:
        return len(self.available(tenant))
