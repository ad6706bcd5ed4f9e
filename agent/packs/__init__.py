"""Domain packs: what the agent understands and can do on one topic, as data.

A pack is a JSON file beside this module (package data), validated by pydantic when loaded:
its vocabulary (words that say a conversation is about this domain), its intents (what a
visitor can ask, each with the words that show it and the sentence the agent answers with),
the tools the chat can run for it, and the persona's menu (what the agent can and cannot do
here). The engine (`threadline.agent.offline`) is generic: it picks the enabled pack whose
vocabulary the conversation uses most, and never speaks another pack's menu. Adding a domain
is adding a file (docs/handoff.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, field_validator

from threadline.handoff.errors import AgentError

# The pack used when no enabled pack's vocabulary appears in the conversation.
GENERAL = "general"


class PackError(AgentError):
    """A pack file is missing or does not validate."""


class PackIntent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=60)
    # Regular expressions (case-insensitive, word-bounded by the loader) that show the intent.
    words: tuple[str, ...] = Field(min_length=1)
    # What the agent says when the chat cannot act on it itself ("I can't change an address
    # from this chat…"). Empty for intents the tools serve (the engine answers those).
    reply: str = ""

    @field_validator("words")
    @classmethod
    def _compiles(cls, words: tuple[str, ...]) -> tuple[str, ...]:
        return _compiled(words)


class Pack(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    topic: str = Field(min_length=1, max_length=80)  # "orders and deliveries"
    vocabulary: tuple[str, ...] = ()  # regexes; the general pack has none
    intents: tuple[PackIntent, ...] = ()
    # Tools of the tenant's backend this pack's chat may run (the insurance demo's lookup,
    # schedule and quote); a pack without tools answers, explains and hands over.
    tools: tuple[str, ...] = ()
    # How a visitor proves who they are here, said when account data is asked for; None
    # means the chat never asks (so a dishwasher owner is never asked for a policy number).
    identity: str | None = None
    can: str = Field(min_length=1, max_length=300)  # "check where an order is"
    cannot: str = Field(min_length=1, max_length=300)  # "change an order or issue a refund"
    greeting: str = ""  # the menu a greeting gets; default built from `can`

    @field_validator("vocabulary")
    @classmethod
    def _compiles(cls, words: tuple[str, ...]) -> tuple[str, ...]:
        return _compiled(words)

    def score(self, text: str, memo: ScoreMemo | None = None) -> int:
        """Vocabulary hits in `text`. `memo`: the caller's map for one turn (see `choose`)."""
        if memo is None:
            return _score(self.vocabulary, text)
        key = (self.vocabulary, text)
        hits = memo.get(key)
        if hits is None:
            hits = memo[key] = _score(self.vocabulary, text)
        return hits

    def intent(self, text: str) -> PackIntent | None:
        """The first intent whose words appear in `text`."""
        return next((i for i in self.intents if any(_rx(w).search(text) for w in i.words)), None)


def _compiled(words: tuple[str, ...]) -> tuple[str, ...]:
    for w in words:
        try:
            re.compile(w)
        except re.error as exc:  # pydantic reports ValueErrors as validation errors
            raise ValueError(f"bad pattern {w!r}: {exc}") from exc
    return words


# (vocabulary, text) → hits, held by one turn (`TurnState.pack_scores`): `choose` runs at
# every step of a turn and scores the visitor's earlier turns against every pack each time —
# the regex scans were ~20 % of a chat turn's CPU (benchmarks.handoff under cProfile). Never
# a process-wide cache: keyed by the visitor's text, it would span tenants and outlive an
# erasure.
ScoreMemo = dict[tuple[tuple[str, ...], str], int]


def _score(vocabulary: tuple[str, ...], text: str) -> int:
    return sum(len(_rx(w).findall(text)) for w in vocabulary)


@cache
def _rx(word: str) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{word})\b", re.IGNORECASE)


def available() -> tuple[str, ...]:
    """Names of the packs shipped with the package."""
    files = resources.files(__name__).iterdir()
    return tuple(sorted(f.name[:-5] for f in files if f.name.endswith(".json")))


@cache
def load(name: str) -> Pack:
    try:
        raw = resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise PackError(f"no agent pack named {name!r} (have: {', '.join(available())})") from exc
    try:
        pack = Pack.model_validate(json.loads(raw))
    except ValueError as exc:
        raise PackError(f"agent pack {name!r} is invalid: {exc}") from exc
    if pack.name != name:
        raise PackError(f"agent pack file {name}.json names itself {pack.name!r}")
    return pack


def load_all(names: Iterable[str]) -> tuple[Pack, ...]:
    packs = tuple(load(n.strip()) for n in names if n.strip())
    if not any(p.name == GENERAL for p in packs):
        packs = (*packs, load(GENERAL))
    return packs


def choose(
    packs: Sequence[Pack], current: str, earlier: Sequence[str], memo: ScoreMemo | None = None
) -> Pack:
    """The pack the conversation is about: the most vocabulary hits, the current turn
    counting double (a topic change wins), earlier packs in the list winning ties. With
    no hit at all, the first pack (the tenant's home) if the visitor has said nothing of
    substance yet, else the general pack. `memo`: a map local to the turn, reused by the
    turn's later calls."""
    best, best_score = None, 0
    for pack in packs:
        score = 2 * pack.score(current, memo) + sum(pack.score(t, memo) for t in earlier[-6:])
        if score > best_score:
            best, best_score = pack, score
    if best is not None:
        return best
    general = next(p for p in packs if p.name == GENERAL)
    words = re.findall(r"[a-z']+", " ".join([*earlier, current]).lower())
    substance = [w for w in words if w not in _SMALL_TALK]
    return packs[0] if len(substance) < 2 else general


# Words that say nothing about a domain: a chat of only these stays with the home pack.
_SMALL_TALK = frozenset(
    {
        "hi", "hello", "hey", "hiya", "there", "good", "morning", "afternoon", "evening", "how",
        "are", "you", "is", "anyone", "it", "me", "thanks", "thank", "ok", "okay", "yes", "no",
        "please", "i", "a", "the", "can", "help", "need", "question",
    }
)  # fmt: skip
