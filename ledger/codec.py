"""The hook between an event's `data` and its stored form.

Crypto-shredding (a later issue) plugs in here: its codec encrypts personal fields with a
per-subject key on `encode` and decrypts them on `decode`. The hash chain covers the *stored*
form, so destroying a key leaves every hash verifiable. The default codec stores data as is.
"""

from __future__ import annotations

from typing import Any, Protocol

from threadline.ledger.errors import LedgerError


class DataCodec(Protocol):
    def encode(self, conversation_id: str, event_type: str, data: dict[str, Any]) -> Any:
        """Returns the JSON-compatible value to store in place of `data`."""

    def decode(self, conversation_id: str, event_type: str, stored: Any) -> dict[str, Any]:
        """Returns the payload dict from its stored form."""


class WouldBlockError(LedgerError):
    """Raised by a codec's `encode_without_io` when encoding would need its key table."""


class IdentityCodec:
    def encode(self, conversation_id: str, event_type: str, data: dict[str, Any]) -> Any:
        return data

    def decode(self, conversation_id: str, event_type: str, stored: Any) -> dict[str, Any]:
        if not isinstance(stored, dict):
            raise ValueError("stored data is not a JSON object")
        return stored

    def encode_without_io(self, conversation_id: str, event_type: str, data: dict[str, Any]) -> Any:
        """`encode` when it needs no I/O (here: always)."""
        return data
