"""A do-question about a noun in reported speech: "what time does the pharmacy close on
Sunday" → "what time the pharmacy closes on Sunday", "does the gym have a sauna" → "whether
the gym has a sauna". Only where the subject plainly ends: "does my council tax include
water" could split anywhere, and is left to be quoted."""

from __future__ import annotations

import re

from threadline.handoff.pronouns import second_person, third_person

_DO_LEAD = re.compile(
    r"^(?P<wh>(?:(?:what|which)(?:\s+[a-z-]+)?|how\s+(?:many|much)\s+[a-z-]+|when|where|why|"
    r"how(?:\s+(?:long|often|soon))?)\s+)?(?P<aux>does|do)\s+(?P<rest>.+)$",
    re.I,
)
_DETERMINERS = frozenset({"the", "my", "a", "an", "your", "our", "this", "that", "these", "those"})
# What may follow the verb of "does the pharmacy close on Sunday": so the verb is a verb.
_AFTER_VERB = frozenset(
    {
        "on", "in", "at", "to", "for", "from", "by", "with", "before", "after", "until", "during",
        "up", "off", "out", "back", "down", "over", "away", "the", "a", "an", "my", "your", "our",
        "it", "them", "me", "us", "this", "that", "any", "more", "less", "late", "early",
    }
)  # fmt: skip
_NOT_NOUN = frozenset(
    {
        "you", "i", "we", "they", "he", "she", "it", "not", "anyone", "someone", "there",
        "on", "in", "at", "to", "for", "of", "from", "with", "by", "about", "and", "or",
    }
)  # fmt: skip


_IRREGULAR = {"have": "has", "be": "is", "do": "does", "go": "goes"}


def do_support(q: str) -> str | None:
    """ "what time does the pharmacy close on Sunday" → "what time the pharmacy closes on
    Sunday"; "does the hiking boot come in size 44" → "whether the hiking boot comes in size
    44". The subject is a noun phrase of up to three words; the word after it is taken for
    the verb only when what follows the verb plainly starts a phrase (else: no rule)."""
    m = _DO_LEAD.match(q)
    if m is None:
        return None
    words = m["rest"].split()
    start = 1 if words and words[0].lower() in _DETERMINERS else 0
    for size in range(1, 4):
        np, verb, after = (
            words[: start + size],
            words[start + size : start + size + 1],
            words[start + size + 1 :],
        )
        if not verb or any(w.lower() in _NOT_NOUN | _DETERMINERS for w in np[start:]):
            return None
        v = verb[0]
        # A verb that ends the question is taken only right after a one-word subject: "does
        # my council tax include water" could split anywhere.
        fits = (not after and size == 1) or (
            bool(after) and (after[0].lower() in _AFTER_VERB or after[0].lower().endswith("ing"))
        )
        if v.isalpha() and v.islower() and v not in _NOT_NOUN and fits:
            if m["aux"].lower() == "does":
                v = _IRREGULAR.get(v.lower()) or third_person(v)
            lead = m["wh"].strip().lower() if m["wh"] else "whether"
            tail = f" {' '.join(after)}" if after else ""
            return f"{lead} {second_person(' '.join(np))} {v}{second_person(tail)}"
    return None
