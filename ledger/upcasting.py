"""Upcasting: old stored payloads are upgraded when read, never rewritten in storage.

An upcaster turns the payload dict of `(event type, schema version N)` into version N + 1.
`upcast` applies the chain until the payload reaches the version the current model writes.
Register upcasters where the new model version is introduced, e.g.::

    @upcaster("MessagePosted", from_version=1)
    def _add_lang(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "lang": None}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def register_upcaster(event_type: str, from_version: int, fn: Upcaster) -> None:
    key = (event_type, from_version)
    if key in _UPCASTERS and _UPCASTERS[key] is not fn:
        raise ValueError(f"an upcaster for {event_type} v{from_version} is already registered")
    _UPCASTERS[key] = fn


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    def decorate(fn: Upcaster) -> Upcaster:
        register_upcaster(event_type, from_version, fn)
        return fn

    return decorate


def upcast(event_type: str, version: int, target: int, data: dict[str, Any]) -> dict[str, Any]:
    """Raises LookupError when a step of the chain is missing (the payload cannot be read as
    the current model)."""
    while version < target:
        fn = _UPCASTERS.get((event_type, version))
        if fn is None:
            raise LookupError(f"no upcaster for {event_type} v{version} -> v{version + 1}")
        data = fn(data)
        version += 1
    return data
