"""Masking names and street addresses without mangling identifiers (issue 16)."""

from __future__ import annotations

import pytest

from threadline.channels.console.masking import mask_data, mask_text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("My name is Jane Doe", "My name is [name]"),
        ("Mrs Patel called yesterday", "Mrs [name] called yesterday"),
        ("I live at 42 Elm Street now", "I live at [address] now"),
        ("send it to 12B Baker St. please", "send it to [address] please"),
        ("my name is on the policy", "my name is on the policy"),
        ("member MBR-100234", "member MBR-[number]"),
    ],
)
def test_names_and_addresses_are_masked(text: str, masked: str) -> None:
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "handoff ho_0fe5bb2f632f7712c724d offered",
        "leg_3cf945047ade49ec opened",
        "claim CLM-4821 on 2026-01-14",
        "conversation 44c2672b247f40a69744e7a04cb9bf69",
    ],
)
def test_identifiers_are_kept(text: str) -> None:
    assert mask_text(text) == text


def test_name_keys_masked_whole() -> None:
    out = mask_data({"first_name": "Jane", "last_name": "Doe", "street": "42 Elm Street"})
    assert out == {"first_name": "J•••", "last_name": "D•••", "street": "4••••••••"}
