"""Handoff tokens: what lets a new voice (or other) leg join a conversation at the
verification level the visitor already reached in chat.

A token is signed (see `threadline.handoff.signing`), short-lived and bound to one conversation, one
handoff id, one channel and one level. It is *single use*, but that is not decided here: a
token is spent when its handoff is completed in the conversation stream, so the stream —
shared by every replica and durable across restarts — is the only record of use
(`threadline.handoff.service.HandoffService.redeem` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast, get_args

from threadline.handoff.errors import TokenError
from threadline.handoff.signing import Signer, peek
from threadline.ledger.events import HandoffChannel

PURPOSE = "handoff"
_CHANNELS = frozenset(get_args(HandoffChannel))


@dataclass(frozen=True, slots=True)
class HandoffClaims:
    conversation_id: str
    handoff_id: str
    channel: HandoffChannel
    level: int  # 0 = not verified in chat; 1..3 as in IdentityVerified.level
    issued_at: int
    expires_at: int


def issue(
    signer: Signer,
    *,
    conversation_id: str,
    handoff_id: str,
    channel: HandoffChannel,
    level: int,
    now: float,
    ttl_s: float,
) -> tuple[str, HandoffClaims]:
    _check_signer(signer)
    if channel not in _CHANNELS:
        raise ValueError(f"unknown handoff channel {channel!r}")
    if not 0 <= level <= 3:
        raise ValueError("level must be 0..3")
    token = signer.issue(
        {"cid": conversation_id, "hid": handoff_id, "ch": channel, "lvl": level},
        now=now,
        ttl_s=ttl_s,
    )
    return token, HandoffClaims(
        conversation_id, handoff_id, channel, level, int(now), int(now + ttl_s)
    )


def verify(signer: Signer, token: str, *, now: float) -> HandoffClaims:
    """Claims of a genuine, unexpired handoff token; TokenError(reason) otherwise."""
    _check_signer(signer)
    return _claims(signer.verify(token, now=now))


def addressed_conversation(token: str) -> str | None:
    """The conversation a token *claims* to be for, unverified: where a rejection of a
    forged or expired token is recorded. Never use it to grant access."""
    claims = peek(token)
    cid = claims.get("cid") if claims else None
    return cid if isinstance(cid, str) and 0 < len(cid) <= 200 else None


def _claims(raw: dict[str, Any]) -> HandoffClaims:
    cid, hid, ch, lvl = raw.get("cid"), raw.get("hid"), raw.get("ch"), raw.get("lvl")
    if not (isinstance(cid, str) and cid and isinstance(hid, str) and hid):
        raise TokenError("malformed", "token does not name a conversation and handoff")
    if ch not in _CHANNELS:
        raise TokenError("malformed", "token names no known channel")
    if not isinstance(lvl, int) or isinstance(lvl, bool) or not 0 <= lvl <= 3:
        raise TokenError("malformed", "token carries no valid level")
    return HandoffClaims(cid, hid, cast(HandoffChannel, ch), lvl, int(raw["iat"]), int(raw["exp"]))


def _check_signer(signer: Signer) -> None:
    if signer.purpose != PURPOSE:
        raise ValueError(f"handoff tokens need a {PURPOSE!r} signer, not {signer.purpose!r}")
