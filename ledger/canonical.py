"""The one byte form that is stored and hashed: canonical JSON (sorted keys, no whitespace,
UTF-8, no NaN/Infinity). Verification re-serialises what it reads and compares bytes, so any
edit of a stored record, even a whitespace-only one, is detected."""

from __future__ import annotations

import hashlib
import json
from json.encoder import encode_basestring  # the C encoder for ensure_ascii=False
from typing import Any

from threadline.ledger.errors import LedgerError

GENESIS_HASH = "0" * 64


class NotCanonicalError(LedgerError, ValueError):
    """The value cannot be written as canonical JSON (NaN, a non-string key, a lone surrogate)."""


# One encoder for every call: `json.dumps` with these options builds a new JSONEncoder per
# call (a few µs on the append path, twice per event); `encode` gives the same text.
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def dumps(obj: Any) -> bytes:
    try:
        return _ENCODER.encode(obj).encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise NotCanonicalError(str(exc)) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(raw: bytes | str) -> Any:
    """Strict JSON parsing: NaN/Infinity are rejected, as `dumps` never writes them."""
    return json.loads(raw, parse_constant=_reject_constant)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def scalar(value: str | int | None) -> str:
    """JSON text of a string, int or null, exactly as `dumps` writes it (hot path: avoids a
    json.dumps call per envelope field)."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return str(encode_basestring(value))
    if isinstance(value, bool) or not isinstance(value, int):
        raise NotCanonicalError(f"not a string, int or null: {value!r}")
    return str(value)


def join(fields: dict[str, str]) -> bytes:
    """Canonical JSON of an object whose values are already canonical JSON text and whose
    keys are plain identifiers: equal to `dumps` of the decoded object, built without
    re-serialising the values."""
    body = ",".join(f'"{key}":{fields[key]}' for key in sorted(fields))
    try:
        return ("{" + body + "}").encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate in a string
        raise NotCanonicalError(str(exc)) from None
