"""Identity material in the visitor's words, which the first utterance never restates: a
date of birth, a member or policy number, a name, a phone number, an e-mail address. A
sentence that holds some is restated only by its other clauses ("my date of birth is
12/03/1984, can you check my pension forecast?" → "can you check my pension forecast?").
"""

from __future__ import annotations

import re

from threadline.handoff.clauses import rewrite_sentences
from threadline.projections.context_model import AgentContext
from threadline.projections.entities import extract
from threadline.projections.topics import content_stems

# Identity material: a clause holding one is never restated.
PRIVATE_KINDS = frozenset({"member_number", "policy_number", "name", "phone"})
_BIRTH = re.compile(r"\b(?:date\s+of\s+birth|d\.?o\.?b\.?|born|birthday|birth\s*date)\b", re.I)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# A phone number the entity rules missed (no country to parse it with): "07700 900123",
# "+44 7700 900123"; a code with letters in it ("LX123456789PT") is no phone.
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}|0)[\s.-]?\d(?:[\s.()-]?\d){7,}(?!\w)")
# Where a sentence's clauses meet: a comma, a semicolon, "and" after a comma-less clause.
_CLAUSE = re.compile(
    r"\s*[,;]\s*|\s+(?:and|but)\s+(?=(?:my|i|i'm|can|could|where|what|how|why|when|is|do)\b)", re.I
)
MIN_STEMS = 2
# What `extract` needs to find a private entity at all: a digit (member, policy and phone
# numbers) or a name's introduction ("my name is", "I'm", "this is", "call me").
_MAY_IDENTIFY = re.compile(r"\d|\b(?:name|name's|this|i'm|am|call)\b", re.I)


def private(sentence: str) -> bool:
    if _BIRTH.search(sentence) or _EMAIL.search(sentence) or _PHONE.search(sentence):
        return True
    if _MAY_IDENTIFY.search(sentence) is None:
        return False  # no digit and no "my name is"/"I'm"/"this is": no private entity
    return any(f.kind in PRIVATE_KINDS for f in extract(sentence))


def without_private(sentence: str) -> str:
    """The sentence without its clauses that hold identity material; "" if nothing of
    substance is left."""
    if not private(sentence):
        return sentence
    parts = _CLAUSE.split(sentence)
    kept = [p for p in parts if p and not private(p)]
    rest = ", ".join(kept).strip(" ,")
    return rest if len(content_stems(rest)) >= MIN_STEMS else ""


def unprivate(context: AgentContext) -> AgentContext:
    """The context with identity material taken out of the visitor's sentences."""
    return rewrite_sentences(context, without_private)
