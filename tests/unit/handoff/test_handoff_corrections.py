"""`handoff/corrections.py`: which sentences correct the question before them, and how."""

from __future__ import annotations

import pytest

from threadline.handoff.corrections import correction, retracts, without_retraction


@pytest.mark.parametrize(
    ("question", "sentence", "found"),
    [
        ("what is the balance on my savings account?",
         "actually I meant the other account, the checking one",
         ("savings account", "checking account")),
        ("why was I charged a fee on account ending 4421?",
         "actually I meant the other account, the one ending 7788",
         ("account ending 4421", "account ending 7788")),
        ("I want to add my wife to the travel policy", "sorry, not my wife, my son",
         ("my wife", "my son")),
        ("can I move my dentist appointment to Friday?", "wait, no, to Thursday",
         ("Friday", "Thursday")),
        ("is the red kettle back in stock?", "oops, the black one", ("red", "black")),
        ("where is my parcel from Lisbon?", "sorry I meant from Porto, not Lisbon",
         ("Lisbon", "Porto")),
        ("I want to book a table for 4 on Saturday", "make that 6 people", ("4", "6")),
        ("is the gallery free on Mondays?", "sorry, typo, Sundays", ("Mondays", "Sundays")),
        ("is the museum open on bank holidays?", "actually I meant on Sundays",
         ("on bank holidays", "on Sundays")),
        ("can I move my appointment to Friday at 3pm?", "wait, no, to Thursday",
         ("Friday", "Thursday")),
        ("can I move my appointment to next Friday at 3pm?", "sorry, I meant to the 12th",
         ("next Friday", "the 12th")),  # by the day each names
        # Not corrections: a new statement after a bare "no", a long answer, no cue at all.
        ("where is my order 5521?", "no, my order never arrived", None),
        ("can I return shoes I've worn once?", "wait, no, they're unworn, I only tried them on",
         None),
        ("is the museum open on Sundays?", "thanks!", None),
        ("can I pay in 12 instalments?", "I also want to move my payment day", None),
        ("when will the parcel arrive?", "it has not arrived yet", None),
        ("can I come in next week?", "not sure, maybe Tuesday", None),
        # Plainly a correction, but of nothing the question says: what it says is asked now.
        ("can you send the invoice?", "I meant the receipt for March", True),
    ],
)  # fmt: skip
def test_a_correction_names_the_phrase_it_replaces(
    question: str, sentence: str, found: tuple[str, str] | bool | None
) -> None:
    assert correction(question, sentence) == found


def test_after_the_agent_asks_a_bare_number_is_an_answer() -> None:
    question = "I ordered 2 lamps and only some arrived"
    assert correction(question, "no, 1") == ("2", "1")
    assert correction(question, "no, 1", loose=False) is None
    assert correction(question, "I meant 1", loose=False) == ("2", "1")  # said plainly


@pytest.mark.parametrize(
    ("sentence", "retracted", "rest"),
    [
        ("never mind that, how much is delivery to Leeds?", True, "how much is delivery to Leeds?"),
        ("actually forget it, can I pause it?", True, "can I pause it?"),
        ("Jonh instead of John", False, "Jonh instead of John"),
        ("can I pay in 12 instalments instead of 10?", False, ""),
    ],
)
def test_retractions(sentence: str, retracted: bool, rest: str) -> None:
    assert retracts(sentence) is retracted
    if retracted:
        assert without_retraction(sentence) == rest
