"""Rule-based entity extraction: reference numbers, dates and months, amounts, products, names.

Deliberately small and offline: every rule is a regular expression with a test, so the same
text always yields the same entities (agent context must be deterministic) and a chat turn
costs a few microseconds. Values are normalised so that "claim #clm-4821" and "CLM-4821"
are one entity; `text` keeps what was actually written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

EntityKind = Literal[
    "claim_number",
    "policy_number",
    "member_number",
    "order_number",
    "reference",
    "date",
    "month",
    "amount",
    "product",
    "name",
    # Added for any-topic grounding: model/serial codes ("DW-88120"), street addresses,
    # relative days ("since Tuesday", "on the 15th") and phone numbers (private).
    "serial",
    "address",
    "day",
    "phone",
]

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MONTH_BY_KEY = {m.lower(): m for m in MONTHS} | {m[:3].lower(): m for m in MONTHS if m != "May"}
_MONTH_BY_KEY["sept"] = "September"
_MONTH_NUMBER = {m: i + 1 for i, m in enumerate(MONTHS)}


@dataclass(frozen=True, slots=True)
class Found:
    """One entity found in a text: `value` is normalised, `text` is the span as written."""

    kind: EntityKind
    value: str
    text: str
    start: int
    end: int


# --- reference numbers -------------------------------------------------------------------

_ID_KEYWORD_KIND: dict[str, EntityKind] = {
    "claim": "claim_number",
    "policy": "policy_number",
    "member": "member_number",
    "membership": "member_number",
    "order": "order_number",
    "reference": "reference",
    "ref": "reference",
    "case": "reference",
    "ticket": "reference",
}
_ID_PREFIX_KIND: dict[str, EntityKind] = {
    "CLM": "claim_number",
    "CLAIM": "claim_number",
    "POL": "policy_number",
    "MBR": "member_number",
    "MEM": "member_number",
    "ORD": "order_number",
    "REF": "reference",
    "CASE": "reference",
    "TKT": "reference",
}
# "claim number is CLM-4821", "policy #P-123456", "order no. 55120", "member ID: M99812".
# One literal-led pattern per keyword: far cheaper than one alternation over all of them.
_ID_AFTER_KEYWORD = {
    kw: re.compile(
        rf"\b{kw}s?(?:\s+(?:number|num|no\.?|id|code))?\s*(?:\bis\b\s*|[:#]\s*)?"
        r"(?P<id>[A-Za-z]{0,5}[-#]?\d[\dA-Za-z-]{2,18})\b",
        re.IGNORECASE,
    )
    for kw in _ID_KEYWORD_KIND
}
# Bare prefixed ids: "CLM-4821", "ORD12345".
_ID_PREFIXED = re.compile(r"\b(?P<prefix>CLM|CLAIM|POL|MBR|MEM|ORD|REF|CASE|TKT)[-#]?\d{3,15}\b")
_YEAR = re.compile(r"(?:19|20)\d\d")


def _normalise_id(raw: str) -> str:
    return raw.upper().replace("#", "-").strip("-")


# --- dates and months --------------------------------------------------------------------

_MONTH_ALT = (
    r"(?:january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)"
)
_ISO_DATE = re.compile(r"\b(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})\b")
_SLASH_DATE = re.compile(r"\b\d{1,2}/\d{1,2}/(?:\d{4}|\d{2})\b")
# Dates around a month word: "15 January 2024", "15th of Jan", "January 15th, 2024", "Jan 15".
# Each month word is found with its own literal pattern (fast), then its neighbours are
# matched in place, instead of scanning every text with one big case-insensitive alternation.
_MONTH_WORD = {key: re.compile(rf"\b{key}\b", re.IGNORECASE) for key in _MONTH_BY_KEY}
_MONTH_WORD["may"] = re.compile(r"\bmay\b", re.IGNORECASE)
_DAY_AFTER = re.compile(
    r"\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?\b(?!\s*[:%$])(?:,?\s+(?P<y>(?:19|20)\d\d)\b)?"
)
_DAY_BEFORE = re.compile(r"\b(?P<d>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?$", re.IGNORECASE)
_YEAR_AFTER = re.compile(r"\.?,?\s+(?P<y>(?:19|20)\d\d)\b")
# Abbreviations, "may" and "march" are also common words: alone they count only after a
# preposition ("in May", "since march", "from Jan").
_PREPOSITION_BEFORE = re.compile(
    r"\b(?:in|of|from|for|since|until|till|last|this|next|early|late|mid|during|before|after|"
    r"on)\s+$",
    re.IGNORECASE,
)
_ALONE_OK = frozenset(m.lower() for m in MONTHS) - {"may", "march"}


def _valid_day(month: str, day: int) -> bool:
    limits = {2: 29, 4: 30, 6: 30, 9: 30, 11: 30}
    return 1 <= day <= limits.get(_MONTH_NUMBER[month], 31)


def _date_value(month: str, day: int, year: str | None) -> str:
    if year:
        return f"{year}-{_MONTH_NUMBER[month]:02d}-{day:02d}"
    return f"{month} {day}"


# --- money -------------------------------------------------------------------------------

_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?"
_SYMBOL_CURRENCY = {"$": "USD", "€": "EUR", "£": "GBP"}
_WORD_CURRENCY = {
    "usd": "USD",
    "dollar": "USD",
    "dollars": "USD",
    "bucks": "USD",
    "eur": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "gbp": "GBP",
    "pound": "GBP",
    "pounds": "GBP",
}
_MONEY_SYMBOL = re.compile(rf"(?P<cur>[$€£])\s?(?P<n>{_NUMBER})\b")
_MONEY_CODE_FIRST = re.compile(rf"\b(?P<cur>USD|EUR|GBP)\s?(?P<n>{_NUMBER})\b", re.IGNORECASE)
_MONEY_WORD_AFTER = re.compile(
    rf"\b(?P<n>{_NUMBER})\s?(?P<cur>usd|eur|gbp|dollars?|euros?|pounds?|bucks)\b", re.IGNORECASE
)


def _money_value(currency: str, number: str) -> str | None:
    try:
        amount = Decimal(number.replace(",", ""))
    except InvalidOperation:
        return None
    return f"{currency} {amount:.2f}"


# --- products and names ------------------------------------------------------------------

_PRODUCT = re.compile(
    r"\b(?P<mods>(?:[A-Z][A-Za-z0-9+&'-]*\s+){1,3})"
    r"(?P<head>plan|cover|coverage|card|package|subscription|membership|bundle|insurance|"
    r"account|policy)\b",
    re.IGNORECASE,
)
_NOT_PRODUCT_WORD = frozenset(
    {"my", "the", "a", "an", "your", "our", "this", "that", "his", "her", "their", "i", "is"}
    | {m.lower() for m in MONTHS}
    | {"hi", "hello", "thanks", "yes", "no", "ok", "about", "what", "which", "can", "do"}
)
_NAME_INTRO = re.compile(
    r"\b(?:my name is|name's|this is|i am|i'm|call me)\s+"
    r"(?P<name>[A-Za-z][A-Za-z'-]*(?:[ \t]+[A-Za-z][A-Za-z'-]*){0,2})",
    re.IGNORECASE,
)
# After "this is"/"I'm" a capitalised word may just be a greeting or a state ("I'm Fine").
_NOT_NAME_WORD = frozenset(
    {
        "a", "an", "the", "not", "so", "very", "just", "still", "fine", "good", "great", "ok",
        "okay", "sorry", "here", "back", "calling", "trying", "looking", "asking", "about",
        "going", "having", "getting", "waiting", "really", "frustrated", "confused", "sure",
        "happy", "glad", "interested", "worried", "concerned", "unable", "able", "on", "in",
        "at", "with", "from", "ridiculous", "urgent", "it", "what", "that", "new", "done",
        "your", "my", "he", "she", "they", "we", "you", "me", "all", "also", "now", "again",
        "and", "but", "or", "i", "is", "was", "here's", "thanks", "thank", "please",
        "regarding", "re", "for", "to", "of", "by", "speaking", "there", "hi", "hello",
    }
)  # fmt: skip


def _name_span(raw: str, explicit: bool) -> tuple[str, int] | None:
    """(name, length of the span it covers in `raw`), stopping at the first non-name word."""
    kept: list[str] = []
    end = 0
    for w in re.finditer(r"\S+", raw):
        word = w.group()
        if word.lower() in _NOT_NAME_WORD or word.lower() in _MONTH_BY_KEY:
            break
        if not word[0].isupper() and not explicit:
            break
        kept.append(word[0].upper() + word[1:])
        end = w.end()
    return (" ".join(kept), end) if kept else None


# --- serials, addresses, relative days, phones -------------------------------------------

# Upper-case letters and digits joined by a dash, or letters run into digits: "DW-88120",
# "SM-G991B", "BA287", "X1-22". Case-sensitive: "order-4417" is not a serial.
_SERIAL = re.compile(
    r"\b(?=[A-Z0-9-]*\d)(?:[A-Z]{1,6}[0-9]*(?:-[A-Z0-9]{2,12})+|[A-Z]{2,5}\d{3,10}[A-Z]{0,3})\b"
)
_STREET_TYPES = (
    r"street|st|road|rd|avenue|ave|lane|ln|drive|dr|way|boulevard|blvd|court|ct|place|pl|"
    r"close|crescent|terrace|square|sq|parkway|highway|hwy|row|hill|gardens|grove|mews"
)
_ADDRESS = re.compile(
    rf"\b(?P<street>\d{{1,5}}[A-Za-z]?,?\s+(?:[A-Za-z][A-Za-z'-]*\s+){{0,3}}"
    rf"(?i:{_STREET_TYPES}))\b\.?(?:,?\s+(?i:apt|flat|unit|suite)\.?\s*\w+)?",
)
_STREET_TOKENS = frozenset(_STREET_TYPES.split("|"))
_WEEKDAYS = r"monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_DAY = re.compile(
    rf"\b(?:(?:since|on|by|before|after|until|till|from|this|next|last|every)\s+)?(?:{_WEEKDAYS})"
    r"(?:\s+(?:morning|afternoon|evening|night))?\b"
    r"|\b(?:(?:on|by|before|after|until|since|from)\s+)?the\s+\d{1,2}(?:st|nd|rd|th)\b"
    r"(?!\s+(?:of\s+)?(?i:" + "|".join(MONTHS) + r"))"
    r"|\b(?:tomorrow|tonight|yesterday|today)(?:\s+(?:morning|afternoon|evening|night))?\b"
    r"|\b(?:next|last|this)\s+(?:week|month|weekend)\b",
    re.IGNORECASE,
)
_DAY_TOKENS = frozenset(_WEEKDAYS.split("|")) | frozenset(
    {"tomorrow", "tonight", "yesterday", "today", "week", "month", "weekend", "st", "nd", "rd"}
    | {"th"}
)
_DIGITS = re.compile(r"\d")
# Seven digits or more before the phone parser runs at all (it is the costly step).
_MIN_PHONE_DIGITS = 7
PHONE_REGIONS = ("US", "GB")


def _serials(text: str, out: list[Found]) -> None:
    for m in _SERIAL.finditer(text):
        raw = m.group()
        if _YEAR.fullmatch(raw) or raw.split("-")[0] in _ID_PREFIX_KIND:
            continue
        out.append(Found("serial", raw, raw, m.start(), m.end()))


def _addresses(text: str, out: list[Found]) -> None:
    for m in _ADDRESS.finditer(text):
        raw = m.group().rstrip(".").rstrip(",")
        street = m.group("street").split()
        # "4417 to 12 Harbour Street": the street begins at its last number.
        first = max(i for i, w in enumerate(street) if w[0].isdigit())
        if first:
            raw = raw[raw.find(street[first]) :]
        start = text.find(raw, m.start())
        value = " ".join(w[0].upper() + w[1:] if w.isalpha() else w for w in raw.split())
        out.append(Found("address", value, raw, start, start + len(raw)))


def _days(text: str, out: list[Found]) -> None:
    for m in _DAY.finditer(text):
        out.append(Found("day", m.group().lower(), m.group(), m.start(), m.end()))


def _phones(text: str, out: list[Found]) -> None:
    # phonenumbers (Google's libphonenumber port): national formats and validity per region
    # are far beyond a regular expression. Imported here: most turns never need it.
    import phonenumbers

    seen: set[int] = set()
    for region in PHONE_REGIONS:
        for m in phonenumbers.PhoneNumberMatcher(text, region):
            if m.start in seen:
                continue
            seen.add(m.start)
            e164 = phonenumbers.format_number(m.number, phonenumbers.PhoneNumberFormat.E164)
            out.append(Found("phone", e164, m.raw_string, m.start, m.end))


# --- the extractor -----------------------------------------------------------------------

_KIND_RANK: dict[EntityKind, int] = {
    "claim_number": 0,
    "policy_number": 0,
    "member_number": 0,
    "order_number": 0,
    "reference": 1,
    "amount": 2,
    "date": 3,
    "month": 4,
    "product": 5,
    "name": 6,
    "serial": 1,
    "address": 2,
    "day": 4,
    "phone": 0,
}
# Cheap guards: one tokenisation per text decides which expressions can match at all, so most
# turns ("yes", "thank you") run none of them.
_TOKEN = re.compile(r"[a-z']+")
_MONTH_TOKENS = frozenset(_MONTH_BY_KEY) | {"may", "sep"}
_ID_KEYWORD_FORMS = {kw: kw for kw in _ID_KEYWORD_KIND} | {f"{kw}s": kw for kw in _ID_KEYWORD_KIND}
_ID_PREFIX_TOKENS = frozenset(k.lower() for k in _ID_PREFIX_KIND)
_MONEY_TOKENS = frozenset(_WORD_CURRENCY)
_CURRENCY_CODES = frozenset({"usd", "eur", "gbp"})
_PRODUCT_HEADS = frozenset(
    {"plan", "cover", "coverage", "card", "package", "subscription", "membership", "bundle"}
    | {"insurance", "account", "policy"}
)
_NAME_TOKENS = frozenset({"name", "name's", "this", "i'm", "am", "call"})
_HAS_DIGIT = re.compile(r"\d")


def words(text: str) -> frozenset[str]:
    """The lower-case words of `text`, shared by the guards here and in `projections.topics`."""
    return frozenset(_TOKEN.findall(text.lower()))


def _ids(text: str, out: list[Found], keywords: frozenset[str]) -> None:
    for kw in keywords:
        kind = _ID_KEYWORD_KIND[kw]
        for m in _ID_AFTER_KEYWORD[kw].finditer(text):
            raw = m.group("id")
            if _YEAR.fullmatch(raw) or not any(c.isdigit() for c in raw):
                continue
            start = m.start("id")
            out.append(Found(kind, _normalise_id(raw), text[start : m.end()], start, m.end()))
    if any(prefix in text for prefix in _ID_PREFIX_KIND):
        for m in _ID_PREFIXED.finditer(text):
            kind = _ID_PREFIX_KIND[m.group("prefix")]
            out.append(Found(kind, _normalise_id(m.group()), m.group(), m.start(), m.end()))


def _dates(text: str, out: list[Found], digits: bool, months: frozenset[str]) -> None:
    if digits and "-" in text:
        for m in _ISO_DATE.finditer(text):
            month_no, day = int(m.group("m")), int(m.group("d"))
            if 1 <= month_no <= 12 and _valid_day(MONTHS[month_no - 1], day):
                out.append(Found("date", m.group(), m.group(), m.start(), m.end()))
    if digits and "/" in text:
        for m in _SLASH_DATE.finditer(text):
            out.append(Found("date", m.group(), m.group(), m.start(), m.end()))
    for key in months:
        month = _MONTH_BY_KEY.get(key) or "May"
        for w in _MONTH_WORD[key].finditer(text):
            _around_month(text, out, digits, key, month, w.start(), w.end())


def _around_month(
    text: str, out: list[Found], digits: bool, key: str, month: str, start: int, end: int
) -> None:
    if digits:
        after = _DAY_AFTER.match(text, end)
        if after is not None and _valid_day(month, int(after.group("d"))):
            value = _date_value(month, int(after.group("d")), after.group("y"))
            out.append(Found("date", value, text[start : after.end()], start, after.end()))
            return
        before = _DAY_BEFORE.search(text, max(0, start - 12), start)
        if before is not None and _valid_day(month, int(before.group("d"))):
            year = _YEAR_AFTER.match(text, end)
            stop = year.end() if year is not None else end
            value = _date_value(month, int(before.group("d")), year and year.group("y"))
            out.append(Found("date", value, text[before.start() : stop], before.start(), stop))
            return
        year = _YEAR_AFTER.match(text, end)
        if year is not None and not year.group().startswith(","):
            stop = year.end()
            out.append(Found("month", f"{month} {year.group('y')}", text[start:stop], start, stop))
            return
    if key in _ALONE_OK or _PREPOSITION_BEFORE.search(text, max(0, start - 8), start):
        out.append(Found("month", month, text[start:end], start, end))


def _money(text: str, out: list[Found], tokens: frozenset[str]) -> None:
    expressions = []
    if "$" in text or "€" in text or "£" in text:
        expressions.append(_MONEY_SYMBOL)
    if not _CURRENCY_CODES.isdisjoint(tokens):
        expressions.append(_MONEY_CODE_FIRST)
    if not _MONEY_TOKENS.isdisjoint(tokens):
        expressions.append(_MONEY_WORD_AFTER)
    for rx in expressions:
        for m in rx.finditer(text):
            cur = m.group("cur")
            currency = _SYMBOL_CURRENCY.get(cur) or _WORD_CURRENCY[cur.lower()]
            value = _money_value(currency, m.group("n"))
            if value is not None:
                out.append(Found("amount", value, m.group(), m.start(), m.end()))


def _products(text: str, out: list[Found]) -> None:
    for m in _PRODUCT.finditer(text):
        words = m.group("mods").split()
        # Keep the capitalised run nearest the head word ("my Gold Plus plan" → "Gold Plus").
        kept: list[str] = []
        for word in reversed(words):
            if not word[0].isupper() or word.lower() in _NOT_PRODUCT_WORD:
                break
            kept.append(word)
        if not kept:
            continue
        kept.reverse()
        head = m.group("head")
        value = " ".join([*kept, head.lower() if head.islower() else head])
        start = text.rfind(kept[0], m.start(), m.start("head"))
        out.append(Found("product", value, text[start : m.end()], start, m.end()))


def _names(text: str, out: list[Found]) -> None:
    for m in _NAME_INTRO.finditer(text):
        intro = m.group().lower()
        explicit = intro.startswith(("my name", "name's", "call me"))
        found = _name_span(m.group("name"), explicit)
        if found is not None:
            start = m.start("name")
            end = start + found[1]
            out.append(Found("name", found[0], text[start:end], start, end))


def extract(text: str, tokens: frozenset[str] | None = None) -> list[Found]:
    """All entities in `text`, in order, without overlaps (the longer, more specific wins).

    `tokens` is `words(text)` when the caller already has it."""
    w = words(text) if tokens is None else tokens
    found: list[Found] = []
    digits = _HAS_DIGIT.search(text) is not None
    if digits:
        keywords = frozenset(_ID_KEYWORD_FORMS[t] for t in _ID_KEYWORD_FORMS.keys() & w)
        if keywords or not _ID_PREFIX_TOKENS.isdisjoint(w):
            _ids(text, found, keywords)
        _money(text, found, w)
        if any(c.isupper() for c in text):
            _serials(text, found)
        if not _STREET_TOKENS.isdisjoint(w):
            _addresses(text, found)
        if len(_DIGITS.findall(text)) >= _MIN_PHONE_DIGITS:
            _phones(text, found)
    _dates(text, found, digits, _MONTH_TOKENS.intersection(w))
    if not _DAY_TOKENS.isdisjoint(w):
        _days(text, found)
    if not _PRODUCT_HEADS.isdisjoint(w):
        _products(text, found)
    if not _NAME_TOKENS.isdisjoint(w):
        _names(text, found)
    if len(found) < 2:
        return found
    found.sort(key=lambda f: (f.start, -(f.end - f.start), _KIND_RANK[f.kind]))
    kept: list[Found] = []
    for f in found:
        if kept and f.start < kept[-1].end:
            continue
        kept.append(f)
    return kept
