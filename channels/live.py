"""Live change notification for streams: which conversations just got new events.

A notification is only a wake-up call; streams always read the events themselves from the
ledger after the last position they sent, so a duplicated or coalesced notification cannot
duplicate or lose an event, and a lost one is repaired by the stream's periodic re-read.

`ChangeFeed` is the seam for other sources: the in-process `LedgerFeed` sees appends made by
any code path of this process (via `Ledger.subscribe`); a cross-replica feed (e.g. PostgreSQL
LISTEN/NOTIFY) implements the same two-line contract and is passed to `LiveHub.attach`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from threadline.ledger.envelope import RecordedEvent

OnChange = Callable[[str], None]
Unsubscribe = Callable[[], None]


class ChangeFeed(Protocol):
    def start(self, on_change: OnChange) -> Unsubscribe:
        """Calls `on_change(conversation_id)` from any thread after events are committed."""
        ...


class SubscribableLedger(Protocol):
    def subscribe(self, listener: Callable[[Sequence[RecordedEvent]], None]) -> Unsubscribe: ...


class LedgerFeed:
    """Changes committed through this process's ledger object."""

    def __init__(self, ledger: SubscribableLedger) -> None:
        self._ledger = ledger

    def start(self, on_change: OnChange) -> Unsubscribe:
        def listener(events: Sequence[RecordedEvent]) -> None:
            for conversation_id in {event.conversation_id for event in events}:
                on_change(conversation_id)

        return self._ledger.subscribe(listener)


class LiveHub:
    """Fans change notifications out to the asyncio tasks waiting on a conversation."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._stops: list[Unsubscribe] = []

    def attach(self, feeds: Iterable[ChangeFeed], loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for feed in feeds:
            self._stops.append(feed.start(self.notify))

    def detach(self) -> None:
        for stop in self._stops:
            stop()
        self._stops.clear()
        self._loop = None

    def notify(self, conversation_id: str) -> None:
        """Thread-safe; cheap when nobody watches the conversation."""
        loop = self._loop
        if loop is None or conversation_id not in self._waiters:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            loop.call_soon_threadsafe(self._wake, conversation_id)

    def _wake(self, conversation_id: str) -> None:
        for event in self._waiters.get(conversation_id, ()):
            event.set()

    def watch(self, conversation_id: str) -> asyncio.Event:
        """Registers a waiter; call before the catch-up read so nothing falls in between."""
        event = asyncio.Event()
        self._waiters.setdefault(conversation_id, set()).add(event)
        return event

    def unwatch(self, conversation_id: str, event: asyncio.Event) -> None:
        waiters = self._waiters.get(conversation_id)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[conversation_id]

    def watcher_count(self) -> int:
        return sum(len(w) for w in self._waiters.values())
