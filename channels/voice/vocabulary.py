"""Builds a per-conversation recognition vocabulary from what the chat already said.

The offline recogniser is exact on synthetic and clear speech when decoding is constrained to
phrases the conversation makes likely, and close to useless with a general language model.
The agent context (topic, entities, the visitor's own chat messages) is exactly that list:
sharing the context across channels is what makes recognition work.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from threadline.channels.voice.ports import Vocabulary

# Short answers and intents a visitor says on any topic, in any conversation.
COMMON_PHRASES: tuple[str, ...] = (
    "yes",
    "no",
    "yes please",
    "no thanks",
    "no thank you",
    "thank you",
    "thanks",
    "okay",
    "hello",
    "hi",
    "goodbye",
    "that is right",
    "that is correct",
    "that is all",
    "go ahead",
    "please continue",
    "can you repeat that",
    "i do not understand",
    "what is the status",
    "what happens next",
    "how long will it take",
    "i want to talk to a person",
    "i will go back to chat",
    "wait",
    "stop",
)

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+")
_CLAUSE = re.compile(r"[.!?;:,\n]+")


def number_words(number: str) -> list[str]:
    """Spells a digit string the way people read it: quantities up to 9999 as numbers,
    longer strings (claim and policy numbers, phone numbers) digit by digit."""
    if len(number) > 4 or (len(number) > 1 and number.startswith("0")):
        return [_ONES[int(d)] for d in number]
    value = int(number)
    if value < 20:
        return [_ONES[value]]
    if value < 100:
        tens, ones = divmod(value, 10)
        return [_TENS[tens]] + ([_ONES[ones]] if ones else [])
    if value < 1000:
        hundreds, rest = divmod(value, 100)
        return [_ONES[hundreds], "hundred"] + (number_words(str(rest)) if rest else [])
    if 1900 <= value <= 2099 and value % 100:  # years: "twenty twenty four"
        return number_words(str(value // 100)) + number_words(str(value % 100).zfill(2)[-2:])
    thousands, rest = divmod(value, 1000)
    return number_words(str(thousands)) + ["thousand"] + (number_words(str(rest)) if rest else [])


def normalize(text: str) -> str:
    """Lowercase words with numbers spelled out and punctuation dropped."""
    words: list[str] = []
    for token in _WORD.findall(text.lower()):
        if token.isdigit():
            words.extend(number_words(token))
        else:
            words.append(token)
    return " ".join(words)


def build_vocabulary(
    texts: Iterable[str] = (),
    entities: Iterable[str] = (),
    *,
    include_common: bool = True,
    max_phrases: int = 400,
) -> Vocabulary:
    """`texts`: sentences from the conversation (visitor messages, the topic, the agent's
    questions); each clause becomes a phrase. `entities`: names, products, months, ids —
    each becomes a word/phrase on its own and in "my <entity>" / "about my <entity>"."""
    phrases: dict[str, None] = {}
    words: dict[str, None] = {}

    def add(phrase: str) -> None:
        if phrase and len(phrases) < max_phrases:
            phrases.setdefault(phrase, None)

    for text in texts:
        for clause in _CLAUSE.split(text):
            add(normalize(clause))
    for entity in entities:
        name = normalize(entity)
        if not name:
            continue
        add(name)
        add(f"my {name}")
        add(f"about my {name}")
        for word in name.split():
            words.setdefault(word, None)
    if include_common:
        for phrase in COMMON_PHRASES:
            add(phrase)
    return Vocabulary(phrases=tuple(phrases), words=tuple(words))
