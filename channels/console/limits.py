"""Operator actions per operator per minute, in memory: it slows one runaway page or script;
the ledger's optimistic concurrency keeps the stream right whatever the rate."""

from __future__ import annotations

import threading
import time
from collections import deque


class ActionLimiter:
    """Operator actions per operator per minute (in memory: it slows one runaway page)."""

    def __init__(self, per_minute: int) -> None:
        self._max = per_minute
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}

    def allow(self, operator: str) -> bool:
        now = time.monotonic()
        with self._lock:
            recent = self._seen.setdefault(operator, deque())
            while recent and recent[0] <= now - 60:
                recent.popleft()
            if len(recent) >= self._max:
                return False
            recent.append(now)
            return True
