"""The one byte form that is stored and hashed: canonical JSON (sorted keys, no whitespace,
UTF-8, no NaN/Infinity). Verification re-serialises what it reads and compares bytes, so any
edit of a stored record, even a whitespace-only one, is detected."""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS_HASH = "0" * 64


class NotCanonicalError(ValueError):
    """The value cannot be written as canonical JSON (NaN, a non-string key, a lone surrogate)."""


def dumps(obj: Any) -> bytes:
    try:
        text = json.dumps(
            obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return text.encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise NotCanonicalError(str(exc)) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(raw: bytes | str) -> Any:
    """Strict JSON parsing: NaN/Infinity are rejected, as `dumps` never writes them."""
    return json.loads(raw, parse_constant=_reject_constant)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
