"""What a visitor turn asks for, read with rules (for the offline model): intents, identity
credentials, dates, plans and riders. Deterministic and topic-agnostic where it can be;
entity extraction is shared with the projections (`threadline.projections.entities`)."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from threadline.projections.entities import MONTHS, extract

Intent = Literal[
    "claim",
    "policy",
    "appointments",
    "schedule",
    "quote",
    "greeting",
    "thanks",
    "voice",
    "unknown",
]


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


_INTENTS: tuple[tuple[Intent, re.Pattern[str]], ...] = (
    ("quote", _rx(r"\b(?:quotes?|how\s+much|price|pricing|cost|compare|comparison|riders?)\b")),
    ("schedule", _rx(r"\b(?:book|schedule|reschedule|slots?|call\s*back|available\s+times?)\b")),
    ("appointments", _rx(r"\bappointments?\b")),
    ("claim", _rx(r"\b(?:claims?|reimburse\w*)\b")),
    ("policy", _rx(r"\b(?:policy|policies|coverage|covered|deductible|my\s+plan|premium)\b")),
    ("voice", _rx(r"\b(?:call|phone|voice|talk|speak)\b")),
    ("thanks", _rx(r"\b(?:thanks|thank\s+you|cheers|bye|goodbye|that'?s\s+all)\b")),
    ("greeting", _rx(r"^\s*(?:hi|hello|hey|good\s+(?:morning|afternoon|evening))\b")),
)
_MONTH_NUMBER = {m: i + 1 for i, m in enumerate(MONTHS)}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY = _rx(r"\b(?:(?:next|this|on)\s+)?(" + "|".join(_WEEKDAYS) + r")\b")
_TOMORROW = _rx(r"\btomorrow\b")
_SLOT_ID = _rx(r"\bSLOT-\d{8}-\d{4}\b")
_SLASH_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
_PLAN_WORD = re.compile(
    r"\b([A-Z][A-Za-z0-9+]*|(?i:bronze|silver|gold|platinum|basic|standard))"
    r"(?:\s+(?i:plan|tier|cover|coverage|package))?\b"
)
_KNOWN_PLAN_HINT = _rx(r"\b(?:bronze|silver|gold|platinum|basic|standard)\b")
_RIDERS = _rx(
    r"\b((?:[a-z]+(?:\s+illness)?)(?:\s*(?:,|and|&|\+)\s*[a-z]+(?:\s+illness)?)*)"
    r"\s+(?:riders?|add-?ons?)\b"
)
_RIDER_SPLIT = _rx(r"\s*(?:,|\band\b|&|\+)\s*")
_NOT_RIDER = frozenset({"a", "the", "with", "any", "some", "no", "and", "plus", "extra"})
_DEDUCTIBLE = _rx(
    r"(?:\$\s?([\d,]+)\s*(?:deductible|excess))|(?:(?:deductible|excess)\s+(?:of\s+)?\$?\s?([\d,]+))"
)


def intents(text: str) -> list[Intent]:
    """Every intent the turn shows, most specific first."""
    found = [name for name, rx in _INTENTS if rx.search(text)]
    return found or ["unknown"]


_CREDENTIAL_WORDS = _rx(
    r"\b(?:member(?:ship)?|policy)\s*(?:number|no\.?|num|id|#)|\bdate\s+of\s+birth\b|\bborn\b"
)


def intents_besides_credentials(text: str) -> list[Intent]:
    """Intents of a turn that gave credentials, not counting "policy number" as a question
    about the policy."""
    return intents(_CREDENTIAL_WORDS.sub(" ", text))


@dataclass(frozen=True, slots=True)
class Credentials:
    identifier: str | None
    date_of_birth: str | None


def credentials(text: str) -> Credentials:
    """A member/policy number and a full date (a date of birth has a year) in `text`."""
    identifier = dob = None
    for found in extract(text):
        if found.kind in ("member_number", "policy_number") and identifier is None:
            identifier = found.value
        elif found.kind == "date" and dob is None and re.match(r"^\d{4}-\d{2}-\d{2}$", found.value):
            dob = found.value
    if dob is None:
        m = _SLASH_DATE.search(text)
        if m:
            dob = m.group(0)
    return Credentials(identifier, dob)


def parse_dob(text: str) -> set[date]:
    """Every date `text` can mean (03/04/1984 is ambiguous between US and day-first)."""
    text = text.strip()
    out: set[date] = set()
    with contextlib.suppress(ValueError):
        out.add(date.fromisoformat(text))
    m = _SLASH_DATE.fullmatch(text)
    if m:
        a, b, y = (int(g) for g in m.groups())
        for month, day in ((a, b), (b, a)):
            with contextlib.suppress(ValueError):
                out.add(date(y, month, day))
    return out


def month_of(text: str) -> int | None:
    for found in extract(text):
        if found.kind == "month":
            name = found.value.split()[0]
            if name in _MONTH_NUMBER:
                return _MONTH_NUMBER[name]
    return None


def reference_of(text: str, kinds: tuple[str, ...]) -> str | None:
    return next((f.value for f in extract(text) if f.kind in kinds), None)


def day_of(text: str, today: date) -> str | None:
    """A day for booking: an ISO or written date, a weekday (the next one), "tomorrow"."""
    if _TOMORROW.search(text):
        return (today + timedelta(days=1)).isoformat()
    for found in extract(text):
        if found.kind != "date":
            continue
        if re.match(r"^\d{4}-\d{2}-\d{2}$", found.value):
            return found.value
        parts = found.value.split()
        if len(parts) == 2 and parts[0] in _MONTH_NUMBER and parts[1].isdigit():
            candidate = date(today.year, _MONTH_NUMBER[parts[0]], int(parts[1]))
            if candidate < today:
                candidate = candidate.replace(year=today.year + 1)
            return candidate.isoformat()
    m = _WEEKDAY.search(text)
    if m:
        ahead = (_WEEKDAYS.index(m.group(1).lower()) - today.weekday()) % 7 or 7
        return (today + timedelta(days=ahead)).isoformat()
    return None


def slot_of(text: str) -> str | None:
    m = _SLOT_ID.search(text)
    return m.group(0).upper() if m else None


def plans_of(text: str) -> list[str]:
    """Plan names in order of mention: "Silver plan", "Gold", "the Bronze tier"."""
    names: list[str] = []
    for found in extract(text):
        if found.kind == "product":
            head = found.value.rsplit(" ", 1)[0]
            if head.lower() not in (n.lower() for n in names):
                names.append(head)
    for m in _PLAN_WORD.finditer(text):
        word = m.group(1)
        is_plan = m.group(0) != word or _KNOWN_PLAN_HINT.fullmatch(word)
        if is_plan and word.lower() not in (n.lower() for n in names) and word.lower() not in (
            "my", "the", "a", "which", "that", "this", "your", "i"
        ):  # fmt: skip
            names.append(word[0].upper() + word[1:])
    return names


def riders_of(text: str) -> list[str]:
    m = _RIDERS.search(text)
    if not m:
        return []
    parts = [p.strip().lower() for p in _RIDER_SPLIT.split(m.group(1))]
    return [p for p in parts if p and p not in _NOT_RIDER]


def deductible_of(text: str) -> int | None:
    m = _DEDUCTIBLE.search(text)
    if not m:
        return None
    raw = (m.group(1) or m.group(2) or "").replace(",", "")
    return int(raw) if raw.isdigit() else None
