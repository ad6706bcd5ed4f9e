"""Does this sentence ask for a person (rather than the AI)?

One grammar, shared by the escalation signals (`signals.py`, kind `explicit_request_human`)
and the operator desk (`human.py`), so the AI and the desk never disagree about what a
request for a person is. It is built from parts rather than listed phrases: *who* (someone,
a person, a human, your staff, one of your colleagues, a real one …) after a *frame* that
asks for them (speak/talk/deal with …, put me through to …, I want/need/prefer …, is
there …), or someone on our side asked to reach the visitor ("can someone from your team
contact me"), or turning the machine down ("not a bot", "I don't want to talk to a
machine"), or the one word alone ("agent!", "human please").

What it leaves out on purpose: "call me" asks for a call, not a person (`signals.py` keeps
that apart); past tense ("I spoke to your agent yesterday") reports, it does not ask; "my
manager", "my agent number" are the visitor's own people and things.
"""

from __future__ import annotations

import re


def _rx(text: str) -> re.Pattern[str]:
    return re.compile(text, re.IGNORECASE)


# The people a visitor may ask for. "someone" alone is vague (see _WHO_DEFINITE below).
_ROLE = (
    r"(?:persons?|people|humans?(?:\s+beings?)?|agents?|representatives?|reps?|advis[oe]rs?|"
    r"operators?|managers?|supervisors?|staff|colleagues?|employees?|team(?:\s+members?)?|"
    r"customer\s+(?:service|support|care)|support\s+(?:team|staff)|someone\s+real)"
)
_ADJ = r"(?:(?:real|actual|live|proper|human|flesh[-\s]and[-\s]blood)\s+)"
# Whose: ours or nobody's in particular, never the visitor's own ("my manager").
_DET = (
    r"(?:(?:a|an|the|your|some|any|one\s+of\s+(?:your|the)|a\s+member\s+of\s+(?:your|the)|"
    r"some(?:one|body)\s+(?:from|at|in|on)\s+(?:your|the))\s+)"
)
# Not a thing named after a person: "an agent number", "the staff portal".
_NOT_A_THING = r"(?!\s+(?:number|id|code|portal|app|account|login|name|details|resources|error))"
_WHO_DEFINITE = rf"(?:{_DET}?{_ADJ}?{_ROLE}|{_DET}?{_ADJ}(?:one|voice))\b{_NOT_A_THING}"
_WHO = rf"(?:{_WHO_DEFINITE}|(?:some|any)(?:one|body)\b)"
# A word or two between the frame and who ("just", "actually"), but not the visitor's own.
_GAP = r"\s+(?:(?!(?:my|his|her|their|our)\b)\w+\s+){0,2}?"
_MACHINE = r"(?:bots?|robots?|chat-?bots?|ai|automated\s+(?:system|assistant|service|replies))"
_TALK_TO = r"(?:to\s+)?(?:talk|speak|chat)(?:ing)?\s+(?:to|with)\s+"

_FRAMES: tuple[re.Pattern[str], ...] = (
    # speak / talk / chat / deal with …, have a word with …
    _rx(rf"\b(?:speak|talk|chat|deal|word)\s+(?:to|with){_GAP}{_WHO}"),
    # put me through to …, pass me on to …, connect / transfer me (to …)
    _rx(
        r"\b(?:put|get|pass|hand|send|connect|transfer|escalate|forward)\s+(?:me|this|it|us)"
        rf"(?:\s+(?:through|over|on|across))?\s+to{_GAP}{_WHO}"
    ),
    _rx(rf"\b(?:connect|transfer|escalate)\s+(?:me\s+)?(?:to|with){_GAP}{_WHO}"),
    # … or passive: "I'd like to be transferred to a person", "get put through to someone"
    # (not "the money was transferred to a person I don't know")
    _rx(
        r"\b(?:be|get|being)\s+(?:transferred|connected|put\s+through|passed(?:\s+on)?|"
        rf"escalated|handed\s+over)\s+(?:to|with){_GAP}{_WHO}"
    ),
    _rx(r"\b(?:connect|transfer|put)\s+me(?:\s+through)?\s*(?:please|pls|now)?\W*$"),
    # I want / need / prefer / would rather / would like … a person ("someone" alone is too
    # vague here: "I need someone to pick it up" is an errand, not a request for us).
    _rx(
        r"\b(?:want|need|prefer|rather|request|ask\s+for|(?:get|give|find|bring)\s+me|"
        r"(?:'d|would)\s+like|(?:can|could|may)\s+i\s+(?:have|get))"
        rf"{_GAP}(?:(?:to\s+)?(?:see|have|get)\s+)?{_WHO_DEFINITE}"
    ),
    # is there a human …, is this a person, am I talking to a bot, are you real
    _rx(
        r"\b(?:is\s+there|are\s+there|is\s+this|am\s+i\s+(?:talking|speaking|chatting)\s+"
        rf"(?:to|with)|are\s+you){_GAP}{_WHO_DEFINITE}"
        r"|\b(?:are\s+you|is\s+this|am\s+i\s+(?:talk|speak|chatt)ing\s+(?:to|with))\s+"
        r"(?:a\s+|an\s+|the\s+)?"
        rf"(?:real|human|{_MACHINE}|machine|computer)\b"
    ),
    # someone there for the visitor: "is a human available?", "any humans around?", "is
    # there anyone I can talk to?" (not "is the team here on Saturdays": opening hours)
    _rx(
        rf"\b(?:(?:is|are)\s+(?:there\s+)?(?:a|an|any)|any)\s+{_ADJ}?{_ROLE}\s+(?:available|"
        r"around|free|online|on\s+duty)\b"
        r"|\bis\s+there\s+(?:any|some)(?:one|body)\s+(?:(?:real|human)\b|(?:i|we)\s+(?:can|"
        r"could)\s+(?:talk|speak|chat))"
    ),
    # a person as the one who acts: "could a member of your team help me", "can a human
    # being look at this"
    _rx(
        rf"\b(?:can|could|will|would|may)\s+{_WHO_DEFINITE}\s+(?:please\s+)?(?:help|look|"
        r"handle|take|deal|check|sort|call|contact|ring|phone|email|get\s+back)\b"
    ),
    # someone on our side reaching the visitor: "can someone from your team contact me"
    _rx(
        rf"\b{_WHO_DEFINITE}\s+(?:(?:can|could|will|would|should|to|please)\s+)?(?:call|"
        r"contact|ring|phone|email|text|reach|get\s+back\s+to|get\s+in\s+touch\s+with)\s+"
        r"(?:me|us)\b"
    ),
    # the machine turned down: "not a bot", "I don't want to talk to a machine" (but not
    # "I'm not a robot", nor "it's not the machine, it's the pipe")
    _rx(
        r"(?:(?<!i'm\s)(?<!i\sam\s)(?<!im\s)\bnot|\bno(?:\s+more)?|\b(?:don'?t|do\s+not)\s+want|"
        r"\b(?:rather\s+not|instead\s+of|rather\s+than|sick\s+of|tired\s+of|fed\s+up\s+with|"
        rf"done\s+with|enough\s+of))\s+(?:{_TALK_TO}(?:a\s+|an\s+|the\s+|this\s+|your\s+|some\s+)?"
        rf"(?:{_MACHINE}|machines?|computers?)|(?:a\s+|an\s+|the\s+|this\s+|your\s+)?"
        rf"{_MACHINE})\b"
    ),
    # a real person / an actual human, however the sentence goes round it
    _rx(rf"\b{_ADJ}(?:{_ROLE}|voices?)\b{_NOT_A_THING}"),
    # one word alone: "agent!", "human please", "Operator?", "representative pls"
    _rx(
        r"^\W*(?:an?\s+)?(?:agent|human|person|operator|representative|rep|someone|staff)"
        r"\W*(?:please|pls|now)?\W*$"
    ),
)


def person_request(text: str) -> re.Match[str] | None:
    """The span of `text` that asks for a person, if any (the first frame that matches)."""
    for frame in _FRAMES:
        if m := frame.search(text):
            return m
    return None
