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
        # Called (in the releasing thread) once a conversation is free: nobody holds or
        # waits for its lock. For event-loop appends, which wait without a thread.
        self._on_free: dict[str, list[Callable[[], None]]] = {}

    @contextmanager
    def hold(self, conversation_id: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(conversation_id) or (threading.Lock(), 0)
            self._locks[conversation_id] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            self._leave(conversation_id)

    def try_hold(
        self, conversation_id: str, on_free: Callable[[], None] | None = None
    ) -> Callable[[], None] | None:
        """Holds the conversation's lock if nobody holds or waits for it, without
        blocking; returns its release (callable from any thread, once), or None, and then
        `on_free` will be called, once, as soon as the conversation is free (in the thread
        that frees it: it must not block). For an append on the event loop that keeps the
        lock across an await of its commit, and waits for it without a thread."""
        with self._guard:
            if conversation_id in self._locks:
                if on_free is not None:
                    self._on_free.setdefault(conversation_id, []).append(on_free)
                return None
            lock = threading.Lock()
            lock.acquire()
            self._locks[conversation_id] = (lock, 1)

        def release() -> None:
            lock.release()
            self._leave(conversation_id)

        return release

    def waiting(self, conversation_id: str) -> bool:
        """Whether a thread waits for the conversation's lock (besides its holder)."""
        with self._guard:
            entry = self._locks.get(conversation_id)
            return entry is not None and entry[1] > 1

    def _leave(self, conversation_id: str) -> None:
        with self._guard:
            lock, users = self._locks[conversation_id]
            if users > 1:
                self._locks[conversation_id] = (lock, users - 1)
                return
            del self._locks[conversation_id]
            woken = self._on_free.pop(conversation_id, ())
        for wake in woken:
            wake()
