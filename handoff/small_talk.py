"""Small talk in a chat ("lovely weather today by the way", "my sister says hi", "haha
yes"): sentences about no matter at all, which the first utterance does not restate
("You said your sister says hi") nor mine for facts ("I have today noted"). The cues are
the conversation's own (greetings passed on, the weather, laughter, pleasantries), never a
topic's, so a chat about anything keeps every sentence of substance.
"""

from __future__ import annotations

import re

from threadline.handoff.clauses import rewrite_sentences
from threadline.projections.context_model import AgentContext
from threadline.projections.topics import sentences

_CHIT_CHAT = re.compile(
    r"^\W*(?:(?:ha){2,}h?|he(?:he)+|lol|lmao|rofl|:\)|:d|😂|😊|🙂)\b"
    r"|\b(?:by\s+the\s+way|btw)\W*$"
    r"|\b(?:says|said|say)\s+(?:hi|hello|hey)\b"
    r"|\b(?:lovely|nice|beautiful|gorgeous|terrible|awful|horrible|great)\s+(?:weather|day|"
    r"morning|afternoon|evening|weekend)\b"
    r"|\b(?:how\s+are\s+you|how's\s+your\s+day|hope\s+you(?:'re|\s+are)\s+(?:well|good|ok))\b"
    r"|\bhave\s+a\s+(?:nice|good|great|lovely)\s+(?:day|one|weekend|evening)\b"
    # Thanks for what is past: "thanks for the help earlier!".
    r"|^\W*(?:many\s+)?(?:thanks|thank\s+you|cheers)(?:\s+(?:so|very)\s+much)?\s+for\s+"
    r"(?:the|your|all\s+the|all\s+your)\s+(?:help|info|information|answer|reply|replies)\b"
    r"[^?]*$"
    # Calling out, or announcing a question without asking it yet.
    r"|^\W*(?:hello|hi|hey)?\W*(?:is\s+)?any(?:one|body)\s+(?:there|here|around)\W*$"
    r"|^\W*(?:hi|hello|hey)?\W*(?:i\s+(?:have|had|got)\s+(?:a\s+)?(?:quick\s+|small\s+)?"
    r"(?:question|query)|(?:a\s+)?quick\s+question|can\s+i\s+ask\s+(?:you\s+)?(?:something|"
    r"a\s+question))\W*$",
    re.I,
)


def small_talk(sentence: str) -> bool:
    return _CHIT_CHAT.search(sentence) is not None


def without_small_talk(context: AgentContext) -> AgentContext:
    """The context without the visitor's small-talk sentences, and without a fact that
    only small talk mentioned ("today" in "lovely weather today")."""
    kept = rewrite_sentences(context, lambda s: "" if small_talk(s) else s)
    if kept is context:
        return context
    chatter = [
        (t.position, s.lower())
        for t in context.recent_turns
        if t.role == "visitor"
        for s in sentences(t.text)
        if small_talk(s)
    ]
    entities = tuple(
        e
        for e in context.entities
        if not any(e.position == e.last_position == p and e.text.lower() in s for p, s in chatter)
    )
    return kept.model_copy(update={"entities": entities})
