"""The visitor taking back or correcting what they asked, folded into the context before the
first utterance restates it, so that it never restates the stale question.

Two moves, both domain-general:

- a *retraction* ("never mind that", "forget it", "scratch that", "changed my mind") ends
  what came before it: nothing the visitor wrote earlier is restated, and the cue itself is
  dropped from the sentence that carries it ("never mind that, how much is delivery?"); a
  retracting question's "it" reads what the retracted one named ("how do I pause it
  instead?" after "how do I cancel my magazine subscription?");
- a *correction* ("actually I meant the other account, the checking one", "sorry, not my
  wife, my son", "wait, no, to Thursday") replaces one phrase of the question before it:
  earlier texts then read the phrase the visitor meant, the correction sentence itself is
  not restated, the corrected question is open again, and a fact only the stale phrase held
  is not noted. It is lined up by a fact of the same kind, a preposition's object, the
  modifier of "the X one", the noun it names, then (unless the agent has just asked
  something) the question's one number or its look-alike word. A correction plainly said
  ("I meant …") that lines up with nothing is a retraction whose own words are what was
  asked.

`amended(context)` applies both to a copy of the agent context; applying it twice is the
same as once. Pure and deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

from threadline.handoff.signals import channel_request
from threadline.projections.context_model import AgentContext, Entity, Question, Request, Turn
from threadline.projections.entities import extract
from threadline.projections.topics import content_stems, sentences

# "actually forget that", "never mind the address": what came before is no longer asked.
RETRACT = re.compile(
    r"\b(?:forget\s+(?:that|it|about)|never\s*mind|nevermind|scratch\s+that|"
    r"ignore\s+(?:that|my)|instead(?!\s+of)|changed\s+my\s+mind)\b",
    re.I,
)
# The cue at the head of a sentence that retracts, dropped before the rest is restated.
_RETRACT_LEAD = re.compile(
    r"^\W*(?:(?:oh|ok|okay|actually|sorry|no|wait|um|hmm)[\s,.!:;-]+)*"
    r"(?:forget\s+(?:that|it)|never\s*mind(?:\s+that|\s+about\s+that)?|nevermind|"
    r"scratch\s+that|ignore\s+that|i(?:'ve|\s+have)?\s+changed\s+my\s+mind)[\s,.!:;-]*",
    re.I,
)
_WEAK = r"(?:actually|sorry|wait|no|nope|oops|oh|ah|hmm|um|my\s+bad|not\s+quite|err?)"
_STRONG = (
    r"(?:what\s+i\s+meant\s+(?:was|is)|i\s+meant(?:\s+to\s+say)?|i\s+mean|"
    r"i\s+should\s+have\s+(?:said|written|put)|make\s+(?:that|it)|it\s+should\s+(?:be|say|read)|"
    r"correction|typo)"
)
_CUE = re.compile(
    rf"^\W*(?P<weak>(?:{_WEAK}(?:[\s,.!:;-]+|$))*)(?P<strong>{_STRONG}\b[\s,.!:;-]*)?", re.I
)
# "not my wife, my son", "not Friday but Thursday", "Thursday, not Friday".
_NOT_THEN = re.compile(r"^not\s+(?P<old>.+?)(?:\s*[,;-]\s*(?:but\s+)?|\s+but\s+)(?P<new>.+)$", re.I)
_THEN_NOT = re.compile(r"^(?P<new>.+?)\s*,?\s+(?:and\s+|but\s+)?not\s+(?P<old>.+)$", re.I)
# "the other account, the checking one" / "the other account, the one ending 7788".
_OTHER = re.compile(
    r"^(?:the\s+|my\s+)?other\s+(?P<head>[\w-]+)"
    r"(?:\s*,?\s*(?:the\s+)?(?:(?P<pre>[\w-]+(?:\s+[\w-]+)?)\s+one|one\s+(?P<post>.+)))?$",
    re.I,
)
_ONE_OF = re.compile(r"^(?:the|my|a|an|your)\s+(?P<mod>[\w-]+)\s+one$", re.I)
_MODIFIED = re.compile(r"\b(?:the|my|a|an|your|our)\s+(?P<mod>[\w-]+)\s+(?P<noun>[\w-]+)", re.I)
_NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)?(?![\w.,]\d)")
MIN_LIKENESS = 0.6
_OBJECT_WORD = re.compile(r"[\w'-]+|[^\w\s]")
MAX_OBJECT_WORDS = 4
_DETERMINER = re.compile(r"\b(?P<det>my|our|the)\s+", re.I)
# "it" as an object ("pause it"), not a subject ("is it possible", "it says").
_OBJECT_IT = re.compile(
    r"(?P<before>\b(?!(?:is|was|does|did|will|can|could|would|should|has|have|had|and|but|"
    r"so|if|make|that|what|how|why|when|where)\b)[a-z]+\s+)it\b(?!['’])",
    re.I,
)
_ONE = re.compile(r"\s+ones?$", re.I)
_DET = re.compile(r"^(?:the|my|a|an|our|your|this|that)\s+", re.I)
_TAIL = re.compile(r"[\s,.!?;:]*(?:\b(?:instead|please|pls|thanks|sorry))?[\s,.!?;:]*$", re.I)
_PREPOSITIONS = frozenset(
    {
        "to", "on", "for", "from", "at", "in", "by", "with", "before", "after", "until", "till",
        "into", "onto", "about", "of",
    }
)  # fmt: skip
_STOP = frozenset(
    {
        "the", "my", "a", "an", "our", "your", "this", "that", "these", "those", "on", "in",
        "at", "to", "for", "from", "of", "with", "by", "is", "are", "was", "were", "be", "been",
        "and", "or", "i", "me", "we", "you", "it", "what", "why", "how", "when", "where",
        "which", "who", "can", "could", "would", "will", "do", "does", "did", "has", "have",
        "had",
    }
)  # fmt: skip
# The trailing reference of a noun phrase: "account ending 4421", "order number 5521".
_REF_TAIL = re.compile(r"^\s+(?:(?:ending(?:\s+in)?|number|no\.?|#)\s*)?[\w-]*\d[\w-]*", re.I)
MAX_WEAK_WORDS = 6


@dataclass(frozen=True, slots=True)
class Swap:
    """In a text written before `position`, `old` reads `new`."""

    position: int
    old: str
    new: str


def retracts(sentence: str) -> bool:
    return RETRACT.search(sentence) is not None


def without_retraction(sentence: str) -> str:
    """ "never mind that, how much is delivery?" → "how much is delivery?" """
    rest = _RETRACT_LEAD.sub("", sentence, count=1)
    return rest if rest.strip() else sentence


def _word_span(text: str, phrase: str) -> re.Match[str] | None:
    spans = list(re.finditer(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", text, re.I))
    return spans[-1] if spans else None


def _explicit(body: str, *, cued: bool) -> tuple[str, str] | None:
    # "Y, not X" only after a cue: "it has not arrived yet" says no "not X".
    for rx in (_NOT_THEN, _THEN_NOT) if cued else (_NOT_THEN,):
        m = rx.match(body)
        if m:
            return _TAIL.sub("", m["old"]).strip(), _TAIL.sub("", m["new"]).strip()
    return None


def _located(question: str, old: str, new: str) -> tuple[str, str] | None:
    """(old, new) as spans of the question: "not my wife, my son" in "add my wife to …"."""
    bare_old, bare_new = _DET.sub("", old), _DET.sub("", new)
    # "not the wooden one, the antique one": the words that differ, without "one".
    ones = (_ONE.sub("", bare_old), _ONE.sub("", bare_new))
    for a, b in ((old, new), (bare_old, bare_new), ones):
        m = _word_span(question, a) if a else None
        if m is not None and a.lower() != b.lower():
            first, _, rest = b.partition(" ")
            if rest and re.search(rf"\b{re.escape(first)}\s*$", question[: m.start()], re.I):
                b = rest  # "from Porto, not Lisbon" in "my parcel from Lisbon": one "from"
            return m.group(0), b
    return None


def _by_entity(question: str, body: str) -> tuple[str, str] | None:
    """The body names a fact of the same kind as one in the question: "to Thursday"."""
    asked = extract(question)
    for found in extract(body):
        same = [f for f in asked if f.kind == found.kind and f.value != found.value]
        if same:
            return same[-1].text, found.text
    return None


def _noun_phrase(body: str) -> tuple[str, str]:
    """(phrase, head) the body means: "the other account, the checking one" → ("checking
    account", "account"); "the savings account" → ("savings account", "")."""
    m = _OTHER.match(body)
    if m:
        head = m["head"]
        if m["pre"]:
            return f"{m['pre']} {head}", head
        if m["post"]:
            return f"{head} {m['post']}", head
        return f"other {head}", head
    return _DET.sub("", body), ""


def _by_head(question: str, phrase: str, head: str) -> tuple[str, str] | None:
    """The noun the body names is in the question: its modifiers and reference change."""
    words = re.findall(r"[\w-]+", phrase)
    if not head and len(words) > 4:
        return None
    # The head of "checking account" is its last word, of "order 5512" its first.
    words = [head] if head else [words[-1], words[0]] if words else []
    for word in words:
        if word.lower() in _STOP:
            continue
        m = _word_span(question, word)
        if m is None:
            continue
        start, end = m.start(), m.end()
        tail = _REF_TAIL.match(question[end:])
        if tail:
            end += tail.end()
        before = re.findall(r"[\w'-]+\s*$", question[:start])
        taken = 0
        while before and taken < 2:
            w = before[0].strip()
            if w.lower() in _STOP or not w.isalpha():
                break
            start -= len(before[0])
            taken += 1
            before = re.findall(r"[\w'-]+\s*$", question[:start])
        old = question[start:end].strip()
        if old.lower() != phrase.lower():
            return old, phrase
    return None


def _by_anchor(question: str, body: str) -> tuple[str, str] | None:
    """ "to Thursday" after "… to Friday": the same preposition, a different object."""
    words = body.split()
    if len(words) < 2 or words[0].lower() not in _PREPOSITIONS:
        return None
    m = _word_span(question, words[0])
    if m is None:
        return None
    # Its object runs to the end of the phrase: "on bank holidays", "to Friday" in "to Friday
    # at 3pm".
    taken: list[str] = []
    for w in _OBJECT_WORD.findall(question[m.end() :]):
        if not w[0].isalnum() or (taken and w.lower() in _STOP) or len(taken) == MAX_OBJECT_WORDS:
            break
        taken.append(w)
    if not taken:
        return None
    old = f"{m.group(0)} {' '.join(taken)}"
    if _word_span(question, old) is None:
        return None
    return (old, body) if old.lower() != body.lower() else None


def _by_modifier(question: str, body: str) -> tuple[str, str] | None:
    """ "the black one" after "is the red kettle back in stock": the word before the
    question's first noun phrase is what changed."""
    m = _ONE_OF.match(body)
    if m is None:
        return None
    new = m["mod"]
    for np in _MODIFIED.finditer(question):
        old = np["mod"]
        if old.lower() not in _STOP and np["noun"].lower() not in _STOP and old != new:
            return old, new
    return None


def _by_number(question: str, body: str) -> tuple[str, str] | None:
    """ "make that 6 people" after "a table for 4": the question's one number changes."""
    new = _NUMBER.findall(body)
    old = _NUMBER.findall(question)
    if len(new) == 1 and len(old) == 1 and new[0] != old[0]:
        return old[0], new[0]
    return None


def _by_likeness(question: str, body: str) -> tuple[str, str] | None:
    """A one-word correction ("sorry, typo, Sundays") replaces the question's word most
    like it ("Mondays")."""
    if not re.fullmatch(r"[\w'-]+", body):
        return None
    words = [w for w in re.findall(r"[\w'-]+", question) if w.lower() not in _STOP]
    scored = [(SequenceMatcher(None, w.lower(), body.lower()).ratio(), w) for w in words]
    best = max(scored, default=(0.0, ""))
    if best[0] >= MIN_LIKENESS and best[1].lower() != body.lower():
        return best[1], body
    return None


def _align(question: str, body: str, *, strong: bool, loose: bool) -> tuple[str, str] | None:
    phrase, head = _noun_phrase(body)
    found = _by_entity(question, body)
    if found is None and body.split()[0].lower() in _PREPOSITIONS:
        found = _by_anchor(question, body)  # "for card payments abroad": by its preposition
    if found is None:
        found = _by_modifier(question, body)
    # A noun phrase to put in place only after "I meant", "the other …" or a determiner:
    # after a bare "no," the words may be a new statement ("no, my order never arrived").
    if found is None and (head or strong or (_DET.match(body) and len(body.split()) <= 3)):
        found = _by_head(question, phrase, head)
    found = found or _by_anchor(question, body)
    if found is None and loose:
        found = _by_number(question, body) or _by_likeness(question, body)
    return found


def correction(
    question: str, sentence: str, *, loose: bool = True
) -> tuple[str, str] | bool | None:
    """(old, new) if `sentence` corrects a phrase of `question`; True if it is plainly a
    correction that lines up with nothing in it; None if it is no correction at all.
    `loose=False` (the agent has just asked something): after a bare "no, …" or "sorry, …"
    a lone number or look-alike word is an answer ("no, 3"), not a correction."""
    cue = _CUE.match(sentence)
    if cue is None:
        return None
    body = _TAIL.sub("", sentence[cue.end() :]).strip()
    explicit = _explicit(body, cued=bool(cue["weak"] or cue["strong"]))
    strong = bool(cue["strong"]) or explicit is not None
    if not strong and (not cue["weak"] or len(body.split()) > MAX_WEAK_WORDS):
        return None
    if not body or body.endswith("?") or retracts(body):
        return None
    if explicit is not None:
        found = _located(question, *explicit)
        # Lined up with nothing: a correction only if plainly said ("not sure, maybe…" is none).
        return found if found is not None else (True if cue["strong"] else None)
    found = _align(question, body, strong=strong, loose=loose or strong)
    if found is not None:
        return found
    return True if strong else None


@dataclass(frozen=True, slots=True)
class _Plan:
    cut: int
    swaps: tuple[Swap, ...]
    dropped: frozenset[str]  # correction sentences: never restated themselves
    reopened: frozenset[int]  # positions of corrected questions
    # A retracting sentence → what its "it" refers to in the question it took back ("how do
    # I pause it instead?" after "how do I cancel my magazine subscription?").
    referents: tuple[tuple[str, str], ...] = ()


def _plan(context: AgentContext) -> _Plan:
    cut = 0
    swaps: list[Swap] = []
    dropped: set[str] = set()
    reopened: set[int] = set()
    referents: dict[str, str] = {}
    asked: list[tuple[int, str]] = []  # the visitor's sentences so far, for the next correction
    agent_asked = False  # "no, 3" after the agent's "how many arrived?" is an answer
    for turn in context.recent_turns:
        if turn.role != "visitor":
            agent_asked = turn.text.rstrip().endswith("?")
            continue
        for sentence in sentences(turn.text):
            target = next(
                ((p, s) for p, s in reversed(asked) if p >= cut and content_stems(s)), None
            )
            found = (
                correction(target[1], sentence, loose=not agent_asked)
                if target is not None
                else None
            )
            if isinstance(found, tuple) and target is not None:
                swaps.append(Swap(turn.position, *found))
                dropped.add(sentence)
                reopened.add(target[0])
                # A second correction corrects the corrected question ("no, Thursday" and
                # then "sorry, Wednesday").
                at = asked.index(target)
                asked[at] = (target[0], _swapped(target[1], found[0], found[1]))
                continue
            if found is True or (retracts(sentence) and channel_request(sentence) is None):
                # What came before is taken back; the correction's own words are asked now.
                cut = turn.position
                np = _last_noun_phrase(target[1]) if target is not None else None
                # Only in a question: "never mind, found it" asks nothing about "it".
                if (
                    np is not None
                    and sentence.rstrip().endswith("?")
                    and _OBJECT_IT.search(sentence)
                ):
                    referents[sentence] = np
            asked.append((turn.position, sentence))
    return _Plan(
        cut, tuple(swaps), frozenset(dropped), frozenset(reopened), tuple(referents.items())
    )


def _last_noun_phrase(sentence: str) -> str | None:
    """The last "my/the/our …" phrase of a sentence, up to three words: "my magazine
    subscription" in "how do I cancel my magazine subscription?"."""
    found = None
    for m in _DETERMINER.finditer(sentence):
        kept: list[str] = []
        for w in re.findall(r"[\w-]+|[^\w\s]", sentence[m.end() :])[:3]:
            if not w[0].isalnum() or w.lower() in _STOP or w.lower() in _PREPOSITIONS:
                break
            kept.append(w)
        if kept:
            found = f"{m['det']} {' '.join(kept)}"
    return found


def _swapped(text: str, old: str, new: str) -> str:
    m = _word_span(text, old)
    return text if m is None else text[: m.start()] + new + text[m.end() :]


def _apply(plan: _Plan, sentence: str, position: int) -> str:
    text = without_retraction(sentence) if retracts(sentence) else sentence
    referent = dict(plan.referents).get(sentence)
    if referent is not None:
        text = _OBJECT_IT.sub(lambda m: m["before"] + referent, text, count=1)
    for swap in plan.swaps:
        if position < swap.position:
            text = _swapped(text, swap.old, swap.new)
    return text


def _rewrite(plan: _Plan, text: str, position: int) -> str:
    kept = [_apply(plan, s, position) for s in sentences(text) if s not in plan.dropped]
    return " ".join(kept)


def _stale(plan: _Plan, entity: Entity) -> bool:
    if entity.last_position < plan.cut:
        return True
    return any(
        entity.last_position < s.position
        and entity.text.lower() in s.old.lower()
        and entity.text.lower() not in s.new.lower()
        for s in plan.swaps
    )


def amended(context: AgentContext) -> AgentContext:
    """The context with retractions and corrections folded in (see the module docstring)."""
    plan = _plan(context)
    if (
        not plan.cut
        and not plan.swaps
        and not any(retracts(t.text) for t in context.recent_turns if t.role == "visitor")
    ):
        return context
    turns: list[Turn] = []
    for t in context.recent_turns:
        if t.role == "visitor" and t.position >= plan.cut:
            text = _rewrite(plan, t.text, t.position)
            if text:
                turns.append(t.model_copy(update={"text": text}))
        elif t.role != "visitor":
            turns.append(t)
    questions: list[Question] = [
        q.model_copy(
            update={
                "text": _apply(plan, q.text, q.position),
                "answered": q.answered and q.position not in plan.reopened,
            }
        )
        for q in context.questions
        if q.position >= plan.cut and q.text not in plan.dropped
    ]
    requests: list[Request] = [
        r.model_copy(update={"text": _apply(plan, r.text, r.position)})
        for r in context.requests
        if r.position >= plan.cut and r.text not in plan.dropped
    ]
    topic = context.topic
    if topic is not None and topic.position < plan.cut:
        topic = None
    elif topic is not None:
        phrase = _apply(plan, topic.phrase, topic.position)
        topic = topic if phrase == topic.phrase else topic.model_copy(update={"phrase": phrase})
    return context.model_copy(
        update={
            "recent_turns": tuple(turns),
            "questions": tuple(questions),
            "requests": tuple(requests),
            "entities": tuple(e for e in context.entities if not _stale(plan, e)),
            "topic": topic,
        }
    )
