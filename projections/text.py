"""Everything the agent context reads from one turn's text, computed once per distinct text.

`analyse(text)` is a pure function of the text and is not cached here: a process-wide cache
keyed by the visitor's text would hold plaintext across tenants and past an erasure. The
fold memoises it per fold instead (`ContextFold`), which covers the texts repeated within
one conversation; a repeat read of a conversation folds from a snapshot
(`projections.snapshots`) rather than analysing its turns again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from threadline.projections.entities import Found, extract, words
from threadline.projections.topics import (
    answers,
    content_stems,
    deflects,
    questions,
    requests,
    topic_phrase,
)

# A topic noun in a statement counts as what the visitor is asking about only with a cue.
_TOPIC_CUE = re.compile(
    r"\b(?:about|regarding|question|problem|issue|help with|asking|calling|enquir|inquir)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class TextFacts:
    entities: tuple[Found, ...]
    questions: tuple[str, ...]
    # (phrase, noun); `explicit` when it comes from a question or after a cue ("about my …")
    topic: tuple[str, str] | None
    explicit: bool
    answers: bool
    # What the visitor wants, in their words (requests(text)); computed for every turn.
    requests: tuple[str, ...] = ()
    # Content stems of a turn that can answer (None if it cannot: holding line, question,
    # a request for details); a question is answered only by a turn that shares one.
    answer_stems: frozenset[str] | None = None


def analyse(text: str) -> TextFacts:
    tokens = words(text)
    asked = tuple(questions(text, tokens))
    topic: tuple[str, str] | None = None
    explicit = False
    for q in asked:
        topic = topic_phrase(q)
        if topic is not None:
            explicit = True
            break
    if topic is None:
        topic = topic_phrase(text, tokens)
        explicit = topic is not None and _TOPIC_CUE.search(text) is not None
    can_answer = answers(text, tokens) and not deflects(text)
    return TextFacts(
        tuple(extract(text, tokens)),
        asked,
        topic,
        explicit,
        can_answer,
        tuple(requests(text, tokens)),
        content_stems(text) if can_answer else None,
    )
