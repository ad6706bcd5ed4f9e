"""PII masking for the console view.

Two rules, applied to any event payload (also to event types that outer packages register):
values under keys that name a person or an address are masked whole; every other string has
e-mail addresses, phone numbers, long digit runs, street addresses and introduced names ("my
name is …", "Mrs …") replaced, while digits inside identifiers are kept. Free-text names
cannot all be found by pattern, so masking is a screen-sharing safeguard, not anonymisation.
"""

from __future__ import annotations

import re
from typing import Any

# Payload keys whose whole value identifies someone (subject ids, ANI/MSISDN, visitor refs).
PII_KEYS = frozenset(
    {
        "subject",
        "visitor_ref",
        "transport_ref",
        "phone",
        "phone_number",
        "email",
        "msisdn",
        "ani",
        "to",
        "from",
        "from_",
        "address",
        "full_name",
        "first_name",
        "last_name",
        "street",
        "postcode",
        "zip",
        "date_of_birth",
        "dob",
    }
)

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# A phone number: optional +, then 7+ digits possibly separated by spaces, dots, dashes, parens.
_PHONE = re.compile(r"(?<![\w])\+?\(?\d[\d\s().-]{5,}\d(?![\w])")
# A digit run inside an identifier (ho_0fe5bb2f632f…, leg_3cf9…) is part of that id, not a
# number about a person: only a run standing alone or after a prefix like "MBR-" is masked.
_DIGITS = re.compile(r"(?<![A-Za-z0-9_])\d{6,}(?![A-Za-z0-9_])")
# A person's name as people introduce it, and after a title. Capitalised words only, so
# "my name is on the policy" keeps its words.
_NAME = re.compile(
    r"(?P<lead>\b(?i:my\s+name\s+is|name\s*:|this\s+is|i\s+am|i'm|call\s+me|speaking\s+with)"
    r"\s+|\b(?:Mr|Mrs|Ms|Miss|Dr|Mx)\.?\s+)"
    r"(?P<name>[A-Z][a-z'-]+(?:\s+[A-Z][a-z'-]+){0,2})"
)
# A street address: a house number, up to four words, a street type.
_STREET = re.compile(
    r"\b\d{1,5}[A-Za-z]?\s+(?:[A-Z][A-Za-z'-]*\s+){1,4}"
    r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|Place|Pl|"
    r"Terrace|Close|Crescent|Square|Sq|Highway|Hwy)\b\.?"
)
# Dates and times look like phone numbers to the pattern above; they are kept.
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}[:.]?\d{2}.*)?|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")
MASK = "•"


def mask_whole(value: str) -> str:
    """Keeps the first character so rows stay tellable apart; hides the length beyond 8."""
    if not value:
        return value
    return value[0] + MASK * min(max(len(value) - 1, 3), 8)


def _digit_count(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def _phone(match: re.Match[str]) -> str:
    found = match.group()
    if _digit_count(found) < 7 or _DATE.fullmatch(found.strip()):
        return found
    return "[phone]"


def mask_text(text: str) -> str:
    text = _EMAIL.sub("[email]", text)
    text = _STREET.sub("[address]", text)
    text = _NAME.sub(lambda m: m.group("lead") + "[name]", text)
    text = _PHONE.sub(_phone, text)
    # Long digit runs (card, account, member numbers), but not the digits of a kept date.
    return _DIGITS.sub("[number]", text) if not _DATE.search(text) else _mask_runs(text)


def _mask_runs(text: str) -> str:
    kept = [m.span() for m in _DATE.finditer(text)]

    def run(match: re.Match[str]) -> str:
        inside = any(a <= match.start() and match.end() <= b for a, b in kept)
        return match.group() if inside else "[number]"

    return _DIGITS.sub(run, text)


def mask_value(value: Any, key: str | None = None) -> Any:
    if isinstance(value, str):
        return (
            mask_whole(value) if key is not None and key.lower() in PII_KEYS else mask_text(value)
        )
    if isinstance(value, dict):
        return {k: mask_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(v, key) for v in value]
    return value


def mask_data(data: dict[str, Any]) -> dict[str, Any]:
    """A masked copy of one event payload (JSON form)."""
    return {k: mask_value(v, k) for k, v in data.items()}
