"""Visitor tokens: signed (`handoff.signing`, purpose "visitor", key from THREADLINE_SECRET),
expiring, and bound to exactly one conversation and its chat leg.

Stateless, so any replica sharing the secret verifies them; a token of another purpose (a
handoff token) never verifies as a visitor token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from threadline.access.errors import UnauthenticatedError
from threadline.handoff.errors import TokenError
from threadline.handoff.signing import Signer

PURPOSE = "visitor"


@dataclass(frozen=True, slots=True)
class VisitorClaims:
    conversation_id: str
    leg_id: str
    tenant: str
    expires_at: int


class VisitorTokens:
    def __init__(self, secret: bytes, ttl_s: int, clock: Callable[[], float] = time.time) -> None:
        self._signer = Signer(secret, PURPOSE)
        self._ttl_s = ttl_s
        self._clock = clock

    def issue(self, conversation_id: str, leg_id: str, tenant: str) -> str:
        return self._signer.issue(
            {"cid": conversation_id, "leg": leg_id, "ten": tenant},
            now=self._clock(),
            ttl_s=self._ttl_s,
        )

    def verify(self, token: str) -> VisitorClaims:
        try:
            raw = self._signer.verify(token, now=self._clock())
        except TokenError as exc:
            raise UnauthenticatedError(f"visitor token rejected: {exc.reason}") from None
        cid, leg, tenant = raw.get("cid"), raw.get("leg"), raw.get("ten")
        if not (isinstance(cid, str) and isinstance(leg, str) and isinstance(tenant, str)):
            raise UnauthenticatedError("visitor token rejected: malformed")
        return VisitorClaims(cid, leg, tenant, int(raw["exp"]))
