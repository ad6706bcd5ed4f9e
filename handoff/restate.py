"""The visitor's own words, turned to the second person: what the first utterance restates.

Domain-general on purpose: nothing here knows about claims, orders or dishwashers. It takes
the request sentences and the questions the agent context kept (`AgentContext.requests`,
`AgentContext.questions`), drops the ones that carry identity material (a date of birth, a
member or policy number, a name, a phone number), swaps the pronouns ("my order" → "your
order", "I'd like" → "you'd like"), and turns questions into reported speech where the
grammar is simple ("has it shipped yet?" → "whether it has shipped yet", "can you change
the address?" → "to change the address"). Every fact it says (an id, a serial, an amount,
a day, a street) is therefore one the visitor wrote. Pure and deterministic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from threadline.handoff.channel_ask import only_asks_to_switch, unswitched
from threadline.handoff.clauses import asks, last_clauses, question_tail, untruncated
from threadline.handoff.corrections import amended
from threadline.handoff.do_questions import do_support
from threadline.handoff.private_text import private, unprivate
from threadline.handoff.pronouns import AGREE, SWAP, second_person, third_person

__all__ = [
    "SWAP",
    "Restatement",
    "heard",
    "only_asks_to_switch",
    "private",
    "reported",
    "restate",
    "second_person",
]
from threadline.handoff.small_talk import without_small_talk
from threadline.projections.context_model import AgentContext
from threadline.projections.entities import extract
from threadline.projections.topics import content_stems, sentences

MAX_PART_CHARS = 150
_LEAD = re.compile(
    r"^(?:(?:hi|hello|hey|ok|okay|so|also|and|but|well|um|uh|oh|yeah|yes|no|actually|sorry|"
    r"right|anyway|hiya|morning|wait|thanks|thank\s+you|cheers|great|perfect|lovely|cool|"
    r"one\s+more\s+thing|another\s+(?:thing|question)|"
    r"quick\s+question|btw|good\s+(?:morning|afternoon|evening)|"
    # Greetings of visitors who mix languages ("olá, my parcel não chegou…").
    r"ol[aá]|oi|bonjour|salut|hola|buenos\s+d[ií]as|ciao|hallo|bom\s+dia|boa\s+tarde)"
    r"(?:\s+there)?[,!.:;-]*\s+)+",
    re.I,
)
# The visitor addressing the agent: "can you check…", "could you please change…".
_ASK_AGENT = re.compile(
    r"^(?:can|could|would|will)\s+(?:you|someone|somebody|u)\s+(?:please\s+|pls\s+|kindly\s+)?"
    r"(?P<rest>.+)$",
    re.I,
)
_AUX = (
    "is|are|was|were|has|have|had|can|could|will|would|should|shall|may|might|does|do|did|"
    "isn't|aren't|wasn't|hasn't|haven't|won't|can't|doesn't|didn't"
)
_PRONOUN = "it|they|i|we|he|she|this|that|there|you"
_YES_NO = re.compile(rf"^(?P<aux>{_AUX})\s+(?P<subj>{_PRONOUN})\s+(?P<rest>.+)$", re.I)
_WH = re.compile(
    rf"^(?P<wh>what|when|where|why|how(?:\s+(?:much|many|long|soon))?|which|who)\s+"
    rf"(?P<aux>{_AUX})\s+(?P<subj>{_PRONOUN})\s+(?P<rest>.+)$",
    re.I,
)


@dataclass(frozen=True, slots=True)
class Restatement:
    said: tuple[str, ...]  # second-person statements: "your dishwasher has been leaking"
    asked_to: tuple[str, ...]  # "change the delivery address on order 4417 …"
    open_questions: tuple[str, ...]  # reported: "whether it has shipped yet"
    answered: tuple[str, ...]  # reported questions the chat already answered
    # Questions no rule reports, in the visitor's order: "is the museum open on Sundays"
    quoted: tuple[str, ...] = ()


# Compiled once: phonenumbers' many patterns churn `re`'s cache, so an inline pattern here
# was compiled again on most calls (a quarter of a first utterance's time).
_END_MARKS = re.compile(r"\s*[?!.…]+$")
_COURTESY_TAIL = re.compile(
    r"\s*(?:,\s*)?(?:please|pls|plz|thanks|thank you|thx|asap|instead)$", re.I
)
_PLEASE = re.compile(r"^please\s+", re.I)
# A link is not read out ("https://example.com/order/123 this link gives a 404").
_URL = re.compile(r"\s*\b(?:https?://|www\.)\S+\s*", re.I)
_WORDS = re.compile(r"[A-Za-z']+")


def _tidy(sentence: str, *, cap: bool = True) -> str:
    s = _LEAD.sub("", _unshouted(_URL.sub("", sentence).strip())).strip()
    s = _END_MARKS.sub("", s).strip()
    s = _COURTESY_TAIL.sub("", s)
    if cap and len(s) > MAX_PART_CHARS:
        s = s[:MAX_PART_CHARS].rsplit(" ", 1)[0] + "…"
    return s


_SHOUTED = re.compile(r"\b[A-Z][A-Z']+\b")


def _unshouted(sentence: str) -> str:
    """ "WHY HAS MY REFUND NOT ARRIVED YET" is said calmly: words in capitals are lowered
    when most of the sentence is capitals (a code with digits, "BA117", stays as written)."""
    if _SHOUTED.search(sentence) is None:
        return sentence
    letters = sum(map(str.isalpha, sentence))
    if letters < 8 or sum(map(str.isupper, sentence)) < 0.7 * letters:
        return sentence
    return _SHOUTED.sub(lambda m: m.group(0) if m.group(0) == "I" else m.group(0).lower(), sentence)


def _lower_first(s: str) -> str:
    if len(s) > 1 and s[0].isupper() and not s[1].isupper() and not s.startswith("I "):
        return s[0].lower() + s[1:]
    return s


# "is my fridge still under warranty" → "whether your fridge is still under warranty": the
# auxiliary moves after a one-word noun, only when the next word plainly starts the predicate
# (so "is the Silver plan cheaper" is left alone rather than garbled).
_PREDICATE = (
    r"still|already|not|being|been|under|in|on|at|covered|coming|going|ready|done|back|"
    r"lower|higher|more|less|late|due|valid|so|too|very|pending|included|cancelled|"
    r"canceled|shipped|arrived|delivered|working|broken|refunded|\$|\d"
)
_NOUN_Q = re.compile(
    rf"^(?:(?P<wh>what|when|where|why|how(?:\s+(?:much|many|long|soon))?|which)\s+)?"
    rf"(?P<aux>is|are|was|were|has|have|will|can|could|should)\s+"
    rf"(?P<det>my|the|our|this|that|your)\s+(?P<noun>[A-Za-z][\w-]*)\s+"
    rf"(?P<rest>(?:{_PREDICATE}).*)$",
    re.I,
)
# "cancel my gym membership before…": an imperative is a request to the agent.
_IMPERATIVE = re.compile(
    r"^(?:please\s+)?(?:cancel|change|update|move|book|reschedule|refund|return|send|replace|"
    r"fix|stop|add|remove|upgrade|transfer|close|reset|unlock|block|pause|check|track|renew|"
    r"extend|arrange|confirm|sort\s+out)\b",
    re.I,
)


_WH_BARE = re.compile(
    r"^(?P<wh>what|when|where|why|how)\s+(?P<aux>is|are|was|were)\s+(?P<subj>it|they|that|this)$",
    re.I,
)
_TRAILING_WH = re.compile(r"^(?P<rest>.+?),?\s+(?P<wh>why|how come|when|how)$", re.I)


def reported(question: str) -> tuple[str, str]:
    """("asked_to" | "asked" | "quoted" | "said", text): a question in reported speech,
    second person. A statement that ends in a question is "said" with the question reported
    after it ("your chain keeps slipping, and asked how you fix it"); a question no rule
    reports is "quoted" (restated as the visitor put it, in the second person); anything
    else is "said"."""
    direct = _report(question)
    split = question_tail(_tidy(question, cap=False)) if direct[0] in _UNREPORTED else None
    if split is not None:
        lead, tail = split
        kind, text = _report(tail)
        if kind != "said":
            lead = _lower_first(second_person(last_clauses(lead, MAX_PART_CHARS)))
            joined = {"asked_to": "asked me to ", "asked": "asked ", "quoted": "asked: "}[kind]
            return "said", f"{lead}, and {joined}{text}{'?' if kind == 'quoted' else ''}"
    return direct


_UNREPORTED = frozenset({"said", "quoted"})
# A question that only adds a case to the one before it: "and for over 65s?", "what about
# on Sundays?" (the greeting-and-filler lead is already gone).
_FOLLOW_ON = re.compile(
    r"^(?:(?:and|or|what|how)\s+about\s+|and\s+|or\s+)?(?P<rest>(?:for|on|in|at|with|to|from|"
    r"during|after|before)\s+(?:[\w'-]+\s*){1,4})$",
    re.I,
)


_BARE_WANT = re.compile(r"^(?:need|want)\b", re.I)
_BARE_ING = re.compile(r"^(?:asking|looking|trying|hoping|wondering|needing|wanting)\b", re.I)
_ABOUT = re.compile(r"^(?:about|regarding|concerning)\s+(?P<rest>.+)$", re.I)


def _report(question: str) -> tuple[str, str]:
    q = _tidy(question)
    m = _ABOUT.match(q)
    if m:  # what a request to switch was about: "(can you call me) about my council tax bill"
        return "asked", f"about {second_person(m['rest'])}"
    m = _TRAILING_WH.match(q)
    if m:  # "the payout is lower than the estimate, why?"
        return "asked", f"{m.group('wh').lower()} {_lower_first(second_person(m['rest']))}"
    m = _ASK_AGENT.match(q)
    if m:
        return "asked_to", second_person(m.group("rest"))
    m = _NOUN_Q.match(q)
    if m:
        lead = m.group("wh").lower() if m.group("wh") else "whether"
        subject = second_person(f"{m['det'].lower()} {m['noun']}")
        return "asked", f"{lead} {subject} {m['aux'].lower()} {second_person(m['rest'])}"
    m = _YES_NO.match(q)
    if m:
        subj, aux = second_person(m.group("subj")), m.group("aux").lower()
        if aux in ("do", "does", "did") and subj == "you" and m.group("subj").lower() != "you":
            aux = "did" if aux == "did" else ""
            return "asked", f"whether {subj} {aux + ' ' if aux else ''}{second_person(m['rest'])}"
        if aux not in ("do", "does", "did"):
            aux = AGREE.get((subj, aux), aux)
            return "asked", f"whether {subj} {aux} {second_person(m.group('rest'))}"
    m = _WH_BARE.match(q)
    if m:  # "where is it" → "where it is"
        subj, aux = second_person(m["subj"]), m["aux"].lower()
        return "asked", f"{m['wh'].lower()} {subj} {AGREE.get((subj, aux), aux)}"
    m = _WH.match(q)
    if m and m.group("aux").lower() in ("do", "does"):
        # "who do I talk to" → "who you talk to"; "how long does that take" → "… that takes"
        subj, wh = second_person(m.group("subj")), m.group("wh").lower()
        first, _, rest = second_person(m.group("rest")).partition(" ")
        if m.group("aux").lower() == "does" and subj not in ("you", "we"):
            first = third_person(first)
        return "asked", f"{wh} {subj} {first}{' ' + rest if rest else ''}"
    if m and m.group("aux").lower() not in ("do", "does", "did"):
        subj, aux = second_person(m.group("subj")), m.group("aux").lower()
        aux = AGREE.get((subj, aux), aux)
        wh = m.group("wh").lower()
        return "asked", f"{wh} {subj} {aux} {second_person(m.group('rest'))}"
    noun_do = do_support(q)
    if noun_do is not None:
        return "asked", noun_do
    if _IMPERATIVE.match(q):
        return "asked_to", _lower_first(second_person(_PLEASE.sub("", q)))
    if asks(q) or question.rstrip().endswith("?"):
        return "quoted", _lower_first(second_person(q))
    return "said", _statement(q)


def _statement(text: str) -> str:
    """A statement in the second person, its subject put back where the visitor left it
    out ("need help finding my tax reference", "asking for the concert on Friday")."""
    q = _tidy(text)
    if _BARE_WANT.match(q):
        q = "I " + _lower_first(q)
    elif _BARE_ING.match(q):
        q = "I'm " + _lower_first(q)
    return _lower_first(second_person(q))


class _Stems(dict[str, frozenset[str]]):
    """Content stems by text, for one restatement (the same texts are compared often)."""

    def __missing__(self, text: str) -> frozenset[str]:
        stems = self[text] = content_stems(text)
        return stems


def _similar(a: str, b: str, stems: _Stems | None = None) -> bool:
    stems = stems if stems is not None else _Stems()
    sa, sb = stems[a], stems[b]
    if not sa or not sb:
        return a.lower() == b.lower()
    return len(sa & sb) / min(len(sa), len(sb)) >= 0.8


def heard(context: AgentContext) -> AgentContext:
    """The chat as the first utterance restates it: long questions whole, requests to
    switch, identity material and small talk taken out (`channel_ask`, `private_text`,
    `small_talk`), what the visitor took
    back or corrected folded in (`corrections`). Applying it again changes nothing."""
    return amended(without_small_talk(unprivate(unswitched(untruncated(context)))))


def restate(context: AgentContext) -> Restatement:
    """What the visitor asked for in the chat, most recent last, at most two of each.
    The chat is read as `heard` reads it first: what the visitor took back is not
    restated, nor identity material, small talk or a request to switch."""
    return restate_heard(heard(context))


def restate_heard(context: AgentContext) -> Restatement:
    """`restate` of a context `heard` already read (the first utterance reads it once)."""
    cut = 0
    said: list[str] = []
    asked_to: list[str] = []
    open_q: list[str] = []
    answered: list[str] = []
    quoted: list[str] = []
    questions = {q.text: q for q in context.questions}
    requested = {r.text for r in context.requests}
    for r in context.requests:
        if r.position < cut:
            continue
        q = questions.get(r.text)
        kind, text = reported(r.text)
        if q is None and _IMPERATIVE.match(_tidy(r.text)):
            asked_to.append(text)
            continue
        if kind == "said":
            said.append(text)  # a statement, maybe one that ends in a question
        elif q is None and _ABOUT.match(_tidy(r.text)):
            open_q.append(text)  # what a call was asked for: "(call me) about my fridge"
        elif q is None:
            said.append(_statement(r.text))
        elif kind == "quoted":
            (answered if q.answered else quoted).append(_quote(text, q.answered))
        elif q.answered:
            answered.append(_gone_over(text))  # "can you change …?": a question and a request
        else:
            (asked_to if kind == "asked_to" else open_q).append(text)
    for q in context.questions:
        if q.position < cut or q.text in requested:
            continue
        kind, text = reported(q.text)
        if not content_stems(_tidy(q.text)) and kind not in ("asked", "asked_to"):
            continue  # "hello?", "is it?": nothing to restate ("where can I get them?" is)
        if kind == "quoted" and open_q and (fragment := _FOLLOW_ON.match(_tidy(q.text))):
            # "and for over 65s?" after "is there a discount for students?"
            open_q[-1] = f"{open_q[-1]}, and {fragment['rest']}"
            continue
        if kind == "said":
            said.append(text)  # a statement that ends in a question
        elif kind == "quoted":
            (answered if q.answered else quoted).append(_quote(text, q.answered))
        elif kind == "asked_to":
            (asked_to if not q.answered else answered).append(text)
        elif q.answered:
            answered.append(_gone_over(text))
        else:
            open_q.append(text)
    said += _question_context(context, cut, {r.text for r in context.requests})
    open_q += _about_fragments(context, {r.text for r in context.requests})
    lists = {"said": said, "asked_to": asked_to, "asked": open_q, "quoted": quoted}
    stems = _Stems()
    kept = {k: list(_dedupe(v, stems)[-2:]) for k, v in lists.items()}
    first = _original(context, cut)
    if first is not None:
        # The visitor's original request is always restated, however long the chat went on.
        kind, text = first
        if kind == "quoted":
            text = _quote(text, answered=False)
        already = [t for group in kept.values() for t in group] + answered
        if not any(_similar(text, t, stems) for t in already):
            group = kept[kind]
            kept[kind] = [text, *group[-1:]]
    return Restatement(
        tuple(kept["said"]),
        tuple(kept["asked_to"]),
        tuple(kept["asked"]),
        _dedupe(answered)[-1:],
        tuple(kept["quoted"]),
    )


def _gone_over(text: str) -> str:
    """ "about your council tax bill" → "your question about your council tax bill" (for
    "We already went over …")."""
    return f"your question {text}" if text.startswith("about ") else text


def _quote(text: str, answered: bool) -> str:
    """A question as the visitor put it: "is the museum open on bank holidays?"; one the
    chat answered is "your question: …" (for "We already went over your question: …")."""
    return f"your question: {text}?" if answered else f"{text}?"


def _about_fragments(context: AgentContext, requests: set[str]) -> list[str]:
    """A turn that only names what the visitor's previous one was about ("I'm looking for
    information" / "about the opening hours of the recycling centre on Sundays")."""
    asked = {q.text for q in context.questions} | requests
    return [
        reported(s)[1]
        for t in context.recent_turns
        if t.role == "visitor"
        for s in sentences(t.text)
        if s not in asked and _ABOUT.match(_tidy(s))
    ]


def _question_context(context: AgentContext, cut: int, requests: set[str]) -> list[str]:
    """Statements written in the same turn as a question: the question runs on into them
    ("why is my bill $212.40 this month?? i was in Spain for a week"), so they carry its
    facts, though the projection keeps neither a question nor a request for them."""
    asked = {q.text for q in context.questions}
    out: list[str] = []
    for turn in context.recent_turns:
        if turn.role != "visitor" or turn.position < cut:
            continue
        parts = sentences(turn.text)
        if not any(p in asked for p in parts):
            continue
        for part in parts:
            if part in asked or part in requests or part.rstrip().endswith("?"):
                continue
            if len(content_stems(_tidy(part))) >= 2 and _is_clause(part):
                out.append(_statement(part))
    return out


def _is_clause(sentence: str) -> bool:
    """At least three words besides its facts: "i was in Spain for a week" is a clause,
    "serial FR-20931" a label (its fact is restated as a noted fact already)."""
    rest = sentence
    for found in sorted(extract(sentence), key=lambda f: f.start, reverse=True):
        rest = rest[: found.start] + " " + rest[found.end :]
    return len(_WORDS.findall(rest)) >= 3


def _original(context: AgentContext, cut: int) -> tuple[str, str] | None:
    """The first visitor sentence of substance since the last retraction, restated."""
    seen = {t.position for t in context.recent_turns}
    candidates = [(r.position, r.text) for r in context.requests if r.position not in seen]
    candidates += [
        (t.position, s)
        for t in context.recent_turns
        if t.role == "visitor"
        for s in sentences(t.text)
    ]
    candidates.sort(key=lambda c: c[0])  # stable: a turn's sentences stay in their order
    asked = {q.text for q in context.questions}
    for position, text in candidates:
        if position < cut or len(content_stems(_tidy(text))) < 2:
            continue
        kind, said = reported(text)
        if kind == "said" or text in asked or text.rstrip().endswith("?"):
            return kind, said
        if asks(_tidy(text)) or _IMPERATIVE.match(_tidy(text)):
            return kind, said
        return "said", _statement(text)
    return None


def _dedupe(items: list[str], stems: _Stems | None = None) -> tuple[str, ...]:
    stems = stems if stems is not None else _Stems()
    kept: list[str] = []
    for item in items:
        if not item:
            continue
        kept = [k for k in kept if not _similar(k, item, stems)]
        kept.append(item)
    return tuple(kept)
