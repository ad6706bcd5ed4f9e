"""E.164 phone numbers as Threadline stores them: "+" then 8 to 15 digits."""

from __future__ import annotations

import re

from threadline.channels.messaging.errors import InvalidPhoneNumberError

_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
_SEPARATORS = re.compile(r"[\s().-]")
_PREFIXES = ("whatsapp:", "tel:", "sms:")


def normalize(raw: str, *, assume_plus: bool = False) -> str:
    """ "whatsapp:+1 (555) 123-4567" -> "+15551234567".

    `assume_plus` accepts bare digits (WhatsApp Cloud sends "15551234567").
    """
    text = raw.strip()
    for prefix in _PREFIXES:
        if text.lower().startswith(prefix):
            text = text[len(prefix) :]
            break
    text = _SEPARATORS.sub("", text)
    if assume_plus and text.isdigit():
        text = "+" + text
    if not _E164.fullmatch(text):
        raise InvalidPhoneNumberError(f"not an E.164 phone number: {raw[:40]!r}")
    return text


def parse_subject(subject: str) -> str | None:
    """The phone number an identity subject names ("tel:+1555..." or "+1555..."), else None."""
    if not subject.startswith(("tel:", "+")):
        return None
    try:
        return normalize(subject)
    except InvalidPhoneNumberError:
        return None


def subject_for(phone: str) -> str:
    """The identity subject Threadline writes for a verified phone number."""
    return f"tel:{phone}"
