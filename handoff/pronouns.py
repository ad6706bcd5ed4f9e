"""The visitor's words turned to the second person, as the agent says them back: "my
order" → "your order", "I was" → "you were", and the visitor's "you" (the company) → "we"
("you charged me twice" → "we charged you twice"). Every other word stays as written."""

from __future__ import annotations

import re

SWAP = {
    "i": "you",
    "i'm": "you're",
    "im": "you're",
    "i've": "you've",
    "ive": "you've",
    "i'd": "you'd",
    "i'll": "you'll",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "we": "you",
    "we're": "you're",
    "we've": "you've",
    "we'd": "you'd",
    "our": "your",
    "ours": "yours",
    "us": "you",
}
# After the swap "you" takes plural agreement: "I am" → "you are", "I was" → "you were".
AGREE = {("you", "am"): "are", ("you", "was"): "were", ("you", "wasn't"): "weren't"}
_WORD = re.compile(r"[A-Za-z']+|[^A-Za-z']+")


def second_person(text: str) -> str:
    """Swaps first-person words for second-person ones, keeping everything else as written."""
    out: list[str] = []
    previous = ""
    for token in _WORD.findall(text):
        low = token.lower()
        if low in SWAP:
            token = SWAP[low]
        elif (previous, low) in AGREE:
            token = AGREE[(previous, low)]
        elif low in ("you", "your", "yours", "you've", "you're", "u", "ur"):
            # The visitor talking to the company ("you charged me twice"): the agent speaks
            # for it, so "you" becomes "we" ("we charged you twice").
            token = {"you": "we", "u": "we", "your": "our", "ur": "our", "yours": "ours"}.get(
                low, {"you've": "we've", "you're": "we're"}.get(low, token)
            )
        if token.strip():
            previous = token.lower()
        out.append(token)
    return "".join(out)


def third_person(verb: str) -> str:
    """ "take" → "takes", "fix" → "fixes", "apply" → "applies" (for "how long does it take")."""
    low = verb.lower()
    if low.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if len(low) > 1 and low.endswith("y") and low[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"
