"""The failed-authentication gate: what slows a caller guessing tokens or keys.

Each failure spends one unit of the caller's budget (a `RateLimiter`, per client address or
per sender number); once it is spent the caller is refused (429) until the budget has
refilled. An SMS sender is checked *before* its message's token is looked at, so a throttled
sender makes the server do (or record) nothing. An HTTP caller is checked once its credential
has failed (`channels/http/deps.py`): a valid credential from the same address still works.
Successful authentications cost nothing here: they are charged by the ordinary per-principal
limits. The block list is this process's: behind `SqlRateLimiter` (one budget across
replicas) another replica looks at one more attempt, finds the shared budget spent, and
refuses it.

The blocked callers are remembered by an HMAC of the principal (random per-process key), not
the client address or sender number itself; the limiter keys its own buckets
(`RateLimiter`: per-process key, `SqlRateLimiter`: the shared bucket key).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from threadline.access.errors import RateLimitedError
from threadline.access.ratelimit import Limiter
from threadline.ledger.aead import blind

log = logging.getLogger(__name__)


class FailedAuthGate:
    def __init__(
        self,
        limiter: Limiter,
        *,
        max_blocked: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limiter = limiter
        self._clock = clock
        self._max = max_blocked
        self._key = secrets.token_bytes(32)
        self._blocked: OrderedDict[str, float] = OrderedDict()  # blind(principal) -> until
        self._lock = threading.Lock()
        self.failures = 0  # every failed authentication this process saw

    def check(self, principal: str) -> None:
        """Raises RateLimitedError if `principal` spent its failure budget (not yet refilled)."""
        now = self._clock()
        blinded = blind(self._key, principal)
        with self._lock:
            until = self._blocked.get(blinded)
            if until is None:
                return
            if now < until:
                raise RateLimitedError(until - now)
            del self._blocked[blinded]

    def failed(self, principal: str) -> None:
        """Records one failed authentication; raises RateLimitedError when that spent the budget."""
        with self._lock:
            self.failures += 1
        try:
            self._limiter.check(principal)
        except RateLimitedError as exc:
            blinded = blind(self._key, principal)
            with self._lock:
                self._blocked[blinded] = self._clock() + exc.retry_after_s
                self._blocked.move_to_end(blinded)
                while len(self._blocked) > self._max:
                    self._blocked.popitem(last=False)
            log.warning("failed-authentication limit reached; refusing %.0f s", exc.retry_after_s)
            raise
