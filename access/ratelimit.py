"""Token-bucket rate limiting per principal (API key, conversation token, client address).

Per process: with several replicas each enforces its own budget. `threadline.access.
ratelimit_sql.SqlRateLimiter` is the shared one (one budget across replicas) behind the same
`check` call.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from threadline.access.errors import RateLimitedError


class Limiter(Protocol):
    def check(self, principal: str, cost: float = 1.0) -> None:
        """Takes `cost` tokens or raises RateLimitedError (taking nothing)."""


class RateLimiter:
    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        max_principals: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._max = max_principals
        self._clock = clock
        # principal -> (tokens, last refill time); least recently used first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, principal: str, cost: float = 1.0) -> None:
        """Takes `cost` tokens or raises RateLimitedError (taking nothing)."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(principal, (self._burst, now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            if tokens < cost:
                self._buckets[principal] = (tokens, now)
                raise RateLimitedError((cost - tokens) / self._rate)
            self._buckets[principal] = (tokens - cost, now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
