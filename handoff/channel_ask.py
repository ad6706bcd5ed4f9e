"""The visitor's request to move to a call (or a person), taken out of what the first
utterance restates: once the call is there, the request is answered, and restating it
("You asked me to call you about your council tax bill") would claim a move the new leg
may not be. What the sentence says besides the request is kept ("can you call me about my
council tax bill?" → "about my council tax bill?"; "order 4417 never came, can someone call
me" → "order 4417 never came"). Which words ask to switch is `signals.channel_request`'s.
"""

from __future__ import annotations

import re

from threadline.handoff.clauses import rewrite_sentences
from threadline.handoff.signals import channel_request
from threadline.projections.context_model import AgentContext
from threadline.projections.topics import content_stems

# Words that, left over around a switch request, say nothing of the visitor's matter
# ("easier to talk, ring me", "honestly can someone just call me").
SWITCH_WORDS = frozenset(
    {
        "instead", "rather", "someone", "somebody", "again", "talk", "speak", "easier",
        "easy", "quicker", "faster", "simpler", "honestly", "call", "phone", "voice", "ring",
        "prefer", "better", "maybe", "think", "quick", "chat", "person",
    }
)  # fmt: skip
# What the request leaves dangling on either side of it.
_BEFORE = re.compile(
    r"(?:[\s,;:-]*\b(?:can|could|would|will|shall|may)\s+(?:you|someone|somebody|we|i|u)"
    r"(?:\s+(?:please|pls|just|maybe))*|[\s,;:-]*\b(?:just|please|pls|maybe|so|and|or|i'd\s+"
    r"(?:like|prefer)\s+to|i\s+want\s+to|let's|lets))+[\s,;:-]*$",
    re.I,
)
_AFTER = re.compile(
    r"^[\s,;:-]*(?:(?:me|us|back|instead|please|pls|now|asap|rather|"
    r"(?:on|at)\s+(?:this|my)\s+number|(?:on|at)\s+\+?\d[\d\s().-]{6,}\d)\b[\s,;:-]*)*",
    re.I,
)
_EDGES = re.compile(r"^[\s,;:.-]+|[\s,;:-]+(?=[?!.]*$)")
_ABOUT = re.compile(r"^(?:about|regarding|re:?|concerning)\s+\S", re.I)


def without_switch(sentence: str) -> str | None:
    """The sentence without its request to switch: None if it makes no such request, ""
    if that request is all it says."""
    m = channel_request(sentence)
    if m is None:
        return None
    before = _BEFORE.sub("", sentence[: m.start()])
    after = _AFTER.sub("", sentence[m.end() :])
    if _ABOUT.match(after):
        rest = after  # "… about my pension": what the call was to be about
    elif before and after and not after[:1].isalnum():
        rest = f"{before}{after}"
    else:
        rest = f"{before} {after}" if before and after else before or after
    rest = _EDGES.sub("", rest).strip()
    if len(content_stems(rest) - SWITCH_WORDS) < 2:
        return ""
    return rest


def only_asks_to_switch(sentence: str) -> bool:
    """ "can we do this on a call instead?", "can I talk to a person": nothing to restate
    once the call (or the person) is there. A sentence that also carries its own content
    ("order 4417 never came, can someone call me") is kept."""
    return without_switch(sentence) == ""


def _rest(sentence: str) -> str:
    rest = without_switch(sentence)
    return sentence if rest is None else rest


def unswitched(context: AgentContext) -> AgentContext:
    """The context with every request to switch taken out of the visitor's sentences."""
    return rewrite_sentences(context, _rest)
