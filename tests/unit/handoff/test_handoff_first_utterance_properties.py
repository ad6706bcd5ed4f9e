"""Properties of the first utterance for questions nobody wrote: whatever the visitor asks
(built from a word list no rule knows), the redeemed leg's opening sentence holds the
question's content words, says no word the chat did not have (besides fixed connective
wording), and after a correction holds the word meant and not the one taken back."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.handoff.utterance_checks import Chat, first_utterance, problems
from threadline.agent.sqltools.sql import SqlToolBackend
from threadline.ledger.store import Ledger, open_ledger

NOUNS = (
    "kayak", "violin", "greenhouse", "aquarium", "scooter", "telescope", "hammock", "quilt",
    "lantern", "piano", "saddle", "easel", "tent", "compass", "kiln", "loom", "trampoline",
    "beehive", "canoe", "harp", "sundial", "typewriter", "wok", "accordion",
)  # fmt: skip
VERBS = ("clean", "paint", "tune", "polish", "store", "assemble", "sharpen", "varnish", "fold")
ADJECTIVES = (
    "wooden", "antique", "folding", "vintage", "spare", "blue", "tiny", "heavy", "brass",
    "striped",
)  # fmt: skip
TEMPLATES = (
    "can I {verb} my {adj} {noun}?",
    "how do I {verb} the {adj} {noun}?",
    "is my {adj} {noun} easy to {verb}?",
    "what is the best way to {verb} a {adj} {noun}?",
    "my {adj} {noun} needs work, how should I {verb} it?",
    "hi, could you help me {verb} my {adj} {noun} please",
    "do you know if I can {verb} the {adj} {noun} at home?",
    "{verb} my {adj} {noun}",
    "why does my {adj} {noun} need me to {verb} it so often?",
    "I bought a {adj} {noun} last week, when can I {verb} it?",
    "where do I {verb} a {adj} {noun}",
)
GREETINGS = ("", "hi, ", "hello there, ", "olá, ", "ok so ", "hey! ")
# Turns after the question that must leave no trace in the utterance.
ASIDES = (
    (),
    ("can we do this on a call instead?",),
    ("lovely weather today by the way",),
    ("my email is sam.lee@example.com",),
    ("thanks!", "easier to talk, ring me"),
)
# Examples run through the real path: a chat agent turn and a redeem each.
EXAMPLES = 40
_ids = count()
# The tool backend fixture is shared by the examples: each chat is its own conversation.
REAL_PATH = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    store = open_ledger("memory://")
    yield store
    store.close()


@REAL_PATH
@given(
    template=st.sampled_from(TEMPLATES),
    noun=st.sampled_from(NOUNS),
    verb=st.sampled_from(VERBS),
    adj=st.sampled_from(ADJECTIVES),
    greeting=st.sampled_from(GREETINGS),
    asides=st.sampled_from(ASIDES),
    verified=st.booleans(),
)
def test_any_question_is_restated_in_its_own_words(
    ledger: Ledger,
    tools: SqlToolBackend,
    template: str,
    noun: str,
    verb: str,
    adj: str,
    greeting: str,
    asides: tuple[str, ...],
    verified: bool,
) -> None:
    question = greeting + template.format(verb=verb, adj=adj, noun=noun)
    stale = ("call", "instead", "weather", "sam.lee", "example.com", "ring", "olá")
    chat = Chat(f"p{next(_ids)}", (question, *asides), (verb, adj, noun), stale, verified=verified)
    utterance, had = first_utterance(ledger, tools, chat)
    assert problems(chat, utterance, had) == [], utterance


@REAL_PATH
@given(
    noun=st.sampled_from(NOUNS),
    verb=st.sampled_from(VERBS),
    adjs=st.lists(st.sampled_from(ADJECTIVES), min_size=2, max_size=2, unique=True),
    form=st.sampled_from(
        (
            "sorry, not the {old} one, the {new} one",
            "actually I meant the {new} {noun}",
            "oops, I mean my {new} {noun}",
            "sorry, not my {old} {noun}, my {new} {noun}",
        )
    ),
)
def test_a_correction_replaces_what_it_corrects(
    ledger: Ledger, tools: SqlToolBackend, noun: str, verb: str, adjs: list[str], form: str
) -> None:
    old, new = adjs
    turns = (f"can I {verb} my {old} {noun}?", form.format(old=old, new=new, noun=noun))
    chat = Chat(f"c{next(_ids)}", turns, (verb, new, noun), stale=(old,))
    utterance, had = first_utterance(ledger, tools, chat)
    assert problems(chat, utterance, had) == [], utterance
