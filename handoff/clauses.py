"""Where the question is in a visitor's sentence, so the first utterance restates it as a
question even when it trails a statement ("my bike chain keeps slipping when I change gear,
how do I fix it?") or closes a long ramble, and whole even when the projection kept only
the first `MAX_QUESTION_CHARS` of the sentence. Domain-general and pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from threadline.projections.context_model import AgentContext
from threadline.projections.topics import MAX_QUESTION_CHARS, content_stems, sentences

# A clause that asks: it opens with a question word or an auxiliary.
QUESTION_START = re.compile(
    r"^(?:what|what's|whats|when|where|why|how|who|which|whose|can|could|would|will|is|are|"
    r"was|were|do|does|did|should|shall|may|might|has|have|had|isn't|aren't|won't|can't|"
    r"doesn't|didn't|any\s+idea|wen|wat|wht)\b",
    re.I,
)
# Where a statement hands over to a question: a comma, a dash, a semicolon, an emoji.
_BREAK = re.compile(r"\s*(?:[,;:]|\s[-–—]\s|[^\w\s'’.,!?&$€£%/()\"#@+-]+)\s*")
MIN_LEAD_STEMS = 2
_CLAUSE_EDGE = re.compile(r"(?<=,)\s+|\s+(?=(?:and\s+then|but|so|because)\s)")
_CONJUNCTION = re.compile(r"^(?:and\s+then|and|but|so|because|then)\s+")


def asks(clause: str) -> bool:
    return QUESTION_START.match(clause.strip()) is not None


def question_tail(sentence: str) -> tuple[str, str] | None:
    """(statement, question) when the sentence is a statement that ends in a question: the
    question is the last clause that opens like one, the statement what comes before it."""
    breaks = list(_BREAK.finditer(sentence))
    for m in reversed(breaks):
        lead, tail = sentence[: m.start()].strip(), sentence[m.end() :].strip()
        if not tail or not asks(tail):
            continue
        if len(content_stems(lead)) < MIN_LEAD_STEMS:
            return None  # "so, how long does it take": nothing to say before the question
        return lead, tail
    return None


def last_clauses(text: str, limit: int) -> str:
    """The end of a long statement, whole clauses only: what leads into its question."""
    if len(text) <= limit:
        return text
    parts = _CLAUSE_EDGE.split(text)
    kept: list[str] = []
    for part in reversed(parts):
        if kept and len(" ".join([part, *kept])) > limit:
            break
        kept.insert(0, part)
    out = _CONJUNCTION.sub("", " ".join(kept).strip(" ,"))
    return out if len(out) <= limit else out[-limit:].split(" ", 1)[-1]


def _whole(text: str, position: int, context: AgentContext) -> str:
    if not text.endswith("…") or len(text) < MAX_QUESTION_CHARS:
        return text
    head = text[:-1]
    for turn in context.recent_turns:
        if turn.position == position:
            for s in sentences(turn.text):
                if s.startswith(head):
                    return s
    return text


def untruncated(context: AgentContext) -> AgentContext:
    """The context with its kept questions and requests whole again (from the turn they
    were written in, while that turn is still among the recent ones)."""
    texts = [q.text for q in context.questions] + [r.text for r in context.requests]
    if not any(t.endswith("…") for t in texts):
        return context
    return context.model_copy(
        update={
            "questions": tuple(
                q.model_copy(update={"text": _whole(q.text, q.position, context)})
                for q in context.questions
            ),
            "requests": tuple(
                r.model_copy(update={"text": _whole(r.text, r.position, context)})
                for r in context.requests
            ),
        }
    )


def rewrite_sentences(context: AgentContext, rewrite: Callable[[str], str]) -> AgentContext:
    """The context with every visitor sentence (of its recent turns, kept questions and
    requests) passed through `rewrite`, once per distinct sentence; one rewritten to "" is
    dropped. The same sentence is rewritten the same way everywhere, so a question still
    matches its request; if no sentence changes, the context itself is returned."""
    texts = [t.text for t in context.recent_turns if t.role == "visitor"]
    texts += [q.text for q in context.questions] + [r.text for r in context.requests]
    memo: dict[str, str] = {}
    split: dict[str, list[str]] = {}
    for text in texts:
        if text not in split:
            split[text] = sentences(text)
            for s in split[text]:
                if s not in memo:
                    memo[s] = rewrite(s).strip()
    if all(memo[s] == s for s in memo):
        return context

    def whole(text: str) -> str:
        return " ".join(memo[s] for s in split[text] if memo[s])

    turns = []
    for t in context.recent_turns:
        text = whole(t.text) if t.role == "visitor" else t.text
        if text:
            turns.append(t if text == t.text else t.model_copy(update={"text": text}))
    questions = [(q, whole(q.text)) for q in context.questions]
    requests = [(r, whole(r.text)) for r in context.requests]
    return context.model_copy(
        update={
            "recent_turns": tuple(turns),
            "questions": tuple(q.model_copy(update={"text": t}) for q, t in questions if t),
            "requests": tuple(r.model_copy(update={"text": t}) for r, t in requests if t),
        }
    )
