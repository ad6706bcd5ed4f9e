"""Token-bucket rate limiting per principal (API key, conversation token, client address).

Per process: with several replicas each enforces its own budget. `threadline.access.
ratelimit_sql.SqlRateLimiter` is the shared one (one budget across replicas) behind the same
`check` call.

The buckets are keyed by an HMAC of the principal with a random per-process key, not the
principal itself: a client address or an SMS sender number is personal data, and a bucket
may sit in memory until the LRU bound pushes it out. Nothing needs the same key elsewhere
(the budget is this process's own).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from threadline.access.errors import RateLimitedError
from threadline.ledger.aead import blind


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
        self._key = secrets.token_bytes(32)
        # blind(principal) -> (tokens, last refill time); least recently used first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, principal: str, cost: float = 1.0) -> None:
        """Takes `cost` tokens or raises RateLimitedError (taking nothing)."""
        now = self._clock()
        principal = blind(self._key, principal)
        with self._lock:
            tokens, last = self._buckets.pop(principal, (self._burst, now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            if tokens < cost:
                self._buckets[principal] = (tokens, now)
                raise RateLimitedError((cost - tokens) / self._rate)
            self._buckets[principal] = (tokens - cost, now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
