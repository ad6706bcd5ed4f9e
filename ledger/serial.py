"""One append at a time per conversation within a process.

Appends to one conversation cannot succeed in parallel anyway (each takes the next position),
so letting them race only turns contention into collisions, re-reads and retries: under 50
writers that collapsed a hot conversation to a few appends per second and ended some in a
spurious conflict. Queued on a per-conversation lock, each append finds the head it will
write after. Appends to different conversations do not wait for each other (the locks are
per conversation, created on demand and dropped when nobody holds or waits for them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class ConversationLocks:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}  # lock, holders + waiters

    @contextmanager
    def hold(self, conversation_id: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(conversation_id) or (threading.Lock(), 0)
            self._locks[conversation_id] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[conversation_id]
                if users == 1:
                    del self._locks[conversation_id]
                else:
                    self._locks[conversation_id] = (lock, users - 1)

    def try_hold(self, conversation_id: str) -> Callable[[], None] | None:
        """Holds the conversation's lock if nobody holds or waits for it, without
        blocking; returns its release (callable from any thread, once), or None. For an
        append on the event loop that keeps the lock across an await of its commit."""
        with self._guard:
            if conversation_id in self._locks:
                return None
            lock = threading.Lock()
            lock.acquire()
            self._locks[conversation_id] = (lock, 1)

        def release() -> None:
            with self._guard:
                held, users = self._locks[conversation_id]
                if users == 1:
                    del self._locks[conversation_id]
                else:
                    self._locks[conversation_id] = (held, users - 1)
            held.release()

        return release
