"""What counts as text a person wrote: at least one visible character, valid Unicode."""

from __future__ import annotations

import unicodedata

# Format characters (zero-width space/joiners, BOM, bidi marks), separators and controls
# render as nothing: a message of only these is blank.
_INVISIBLE = frozenset({"Cf", "Cc", "Zs", "Zl", "Zp", "Mn", "Me"})


def is_blank(text: str) -> bool:
    return all(c.isspace() or unicodedata.category(c) in _INVISIBLE for c in text)


def has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
