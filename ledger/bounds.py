"""Bounds on event data, checked before anything else looks at it: nesting depth, number of
values, and text that UTF-8 can represent.

Without them a 900-deep argument object reached recursive code (validation, canonical JSON)
and ended in RecursionError, and a lone surrogate in a key was stored altered. The walk is
iterative, so the check itself cannot overflow the stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from threadline.ledger.errors import InvalidEventError

MAX_DEPTH = 32
MAX_VALUES = 10_000


def check_data(data: Any) -> None:
    """Raises InvalidEventError unless `data` (JSON-like) is within the bounds."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    seen = 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise InvalidEventError(f"event data holds more than {MAX_VALUES} values")
        if isinstance(value, str):
            check_text(value)
        elif isinstance(value, Mapping):
            if depth >= MAX_DEPTH:
                raise InvalidEventError(f"event data is nested deeper than {MAX_DEPTH} levels")
            for k, v in value.items():
                if isinstance(k, str):
                    check_text(k)
                stack.append((v, depth + 1))
        elif isinstance(value, list | tuple):
            if depth >= MAX_DEPTH:
                raise InvalidEventError(f"event data is nested deeper than {MAX_DEPTH} levels")
            stack.extend((v, depth + 1) for v in value)


def check_text(text: str) -> None:
    """Lone surrogates (valid in a JSON escape, not in UTF-8) are refused, not altered."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidEventError("text holds a lone surrogate (not valid Unicode)") from None
