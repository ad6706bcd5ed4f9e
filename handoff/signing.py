"""Generic signed, expiring tokens (HMAC-SHA256) shared by handoff and visitor tokens.

Format: ``tl1.<base64url(json claims)>.<base64url(mac)>``. Every token carries its purpose,
issue time and expiry; each purpose signs with its own key derived from the one secret, so a
token minted for one purpose (a chat visitor) can never be accepted for another (a handoff),
even if the claim sets happened to look alike. The secret comes from `THREADLINE_SECRET` and
is never logged or put in an error message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
from collections.abc import Mapping
from typing import Any

from threadline.handoff.errors import ConfigurationError, TokenError
from threadline.handoff.settings import HandoffSettings

log = logging.getLogger(__name__)

VERSION = "tl1"
# A signed token as it stands inside free text (an SMS body, a mail subject).
TOKEN_PATTERN = re.compile(rf"{VERSION}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
MAX_TOKEN_LENGTH = 4096
MIN_SECRET_LENGTH = 32
# Tokens issued by a clock slightly ahead of ours are still fine; far-future ones are not.
CLOCK_SKEW_S = 30

_RESERVED = ("pur", "iat", "exp")
_ephemeral_lock = threading.Lock()
_ephemeral_secret: bytes | None = None


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text or any(c not in _B64_ALPHABET for c in text):
        raise TokenError("malformed", "token is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("malformed", "token is not base64url") from None


_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def resolve_secret(settings: HandoffSettings | None = None) -> bytes:
    """The configured secret, or a random per-process one (tokens then do not survive a
    restart and are not accepted by other replicas, so a warning says so, once)."""
    settings = settings or HandoffSettings()
    if settings.secret is not None:
        value = settings.secret.get_secret_value()
        if len(value) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"THREADLINE_SECRET must be at least {MIN_SECRET_LENGTH} characters"
            )
        return value.encode("utf-8")
    global _ephemeral_secret
    with _ephemeral_lock:
        if _ephemeral_secret is None:
            _ephemeral_secret = secrets.token_bytes(32)
            log.warning(
                "THREADLINE_SECRET is not set: using a random per-process key; tokens will "
                "not survive a restart or be accepted by another replica"
            )
        return _ephemeral_secret


class Signer:
    """Signs and verifies tokens for one purpose (e.g. "handoff", "visitor")."""

    __slots__ = ("_key", "purpose")

    def __init__(self, secret: bytes, purpose: str) -> None:
        if not purpose or not purpose.isascii():
            raise ValueError("purpose must be a non-empty ASCII word")
        self.purpose = purpose
        self._key = hmac.new(
            secret, b"threadline-token-key/" + purpose.encode("ascii"), hashlib.sha256
        ).digest()

    def __repr__(self) -> str:  # never show key material
        return f"Signer(purpose={self.purpose!r})"

    @classmethod
    def from_settings(cls, purpose: str, settings: HandoffSettings | None = None) -> Signer:
        return cls(resolve_secret(settings), purpose)

    def _mac(self, signed_part: str) -> bytes:
        return hmac.new(self._key, signed_part.encode("ascii"), hashlib.sha256).digest()

    def issue(self, claims: Mapping[str, Any], *, now: float, ttl_s: float) -> str:
        """A token carrying `claims` plus purpose, issue time and expiry (whole seconds)."""
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        clash = [k for k in _RESERVED if k in claims]
        if clash:
            raise ValueError(f"reserved claim names: {clash}")
        body = {**claims, "pur": self.purpose, "iat": int(now), "exp": int(now + ttl_s)}
        payload = _b64encode(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
        signed_part = f"{VERSION}.{payload}"
        return f"{signed_part}.{_b64encode(self._mac(signed_part))}"

    def verify(self, token: str, *, now: float) -> dict[str, Any]:
        """The claims of a genuine, unexpired token of this purpose, or TokenError with
        reason malformed | forged | wrong_purpose | expired."""
        version, payload, mac = _split(token)
        signed_part = f"{version}.{payload}"
        if not hmac.compare_digest(self._mac(signed_part), _b64decode(mac)):
            raise TokenError("forged", "token signature does not verify")
        claims = _decode_claims(payload)
        if claims.get("pur") != self.purpose:
            raise TokenError("wrong_purpose", "token was issued for another purpose")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or exp <= iat:
            raise TokenError("malformed", "token has no valid lifetime")
        if iat > now + CLOCK_SKEW_S:
            raise TokenError("malformed", "token is issued in the future")
        if now >= exp:
            raise TokenError("expired", "token has expired")
        return claims


def peek(token: str) -> dict[str, Any] | None:
    """The claims of a token WITHOUT checking its signature, or None if unreadable. Only for
    deciding where to record a rejection; never for granting anything."""
    try:
        _, payload, _ = _split(token)
        return _decode_claims(payload)
    except TokenError:
        return None


def _split(token: str) -> tuple[str, str, str]:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("malformed", "token is empty or too long")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise TokenError("malformed", "token is not a Threadline token")
    return parts[0], parts[1], parts[2]


def _decode_claims(payload: str) -> dict[str, Any]:
    try:
        claims = json.loads(_b64decode(payload))
    except (UnicodeDecodeError, ValueError):
        raise TokenError("malformed", "token payload is not JSON") from None
    if not isinstance(claims, dict):
        raise TokenError("malformed", "token payload is not an object")
    return claims
