"""Everything the agent context reads from one turn's text, computed once per distinct text.

`analyse(text)` is a pure function of the text, so its result is memoised: rebuilding the
context of a conversation (every chat turn, API read and handoff folds from position 1)
re-reads the same turns, and a cached analysis makes a repeat build cost little more than
the fold's bookkeeping (without it a 1,000-event fold costs ~10× and a chat turn ~2×,
measured in session 4). Only texts up to `CACHE_TEXT_LIMIT` characters are cached, which
bounds its memory.

The cache holds visitors' words, so it must not outlive an erasure: `clear_on_erasure`
empties it whenever `SubjectErased` is appended through the ledger (wired by the composition
root), and the context snapshots empty it when they see another process's erasure mark.
Nothing reads the cache but `analyse`, so one tenant cannot see another's texts through it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.store import Ledger
from threadline.projections.entities import Found, extract, words
from threadline.projections.topics import (
    answers,
    content_stems,
    deflects,
    questions,
    requests,
    topic_phrase,
)

CACHE_SIZE = 16384
CACHE_TEXT_LIMIT = 1000
ERASED = "SubjectErased"
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


def _analyse(text: str) -> TextFacts:
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


_cached = lru_cache(maxsize=CACHE_SIZE)(_analyse)


def analyse(text: str) -> TextFacts:
    return _cached(text) if len(text) <= CACHE_TEXT_LIMIT else _analyse(text)


def clear_cache() -> None:
    """Forgets every analysed text: after an erasure, and for benchmarks of the cold cost."""
    _cached.cache_clear()


def clear_on_erasure(ledger: Ledger) -> Callable[[], None]:
    """Empties the cache when `SubjectErased` is appended through `ledger` (the erased
    subject's words may be in any conversation's analysed turns). Returns unsubscribe."""

    def listener(events: list[RecordedEvent]) -> None:
        if any(e.type == ERASED for e in events):
            clear_cache()

    return ledger.subscribe(listener)
