"""`restate.reported`: a question about a noun ("does the pharmacy close on Sunday") in
reported speech, and left quoted where its words could split more than one way."""

from __future__ import annotations

import pytest

from threadline.handoff.restate import reported


@pytest.mark.parametrize(
    ("question", "said"),
    [
        ("what time does the pharmacy close on Sunday?",
         ("asked", "what time the pharmacy closes on Sunday")),
        ("when does enrolment open for the spring semester?",
         ("asked", "when enrolment opens for the spring semester")),
        ("does the hiking boot come in size 44?",
         ("asked", "whether the hiking boot comes in size 44")),
        ("what vaccines does my puppy need before the first walk?",
         ("asked", "what vaccines your puppy needs before the first walk")),
        ("does the gym have a sauna?", ("asked", "whether the gym has a sauna")),
        ("what does the fee cover?", ("asked", "what the fee covers")),
        ("do the trains run late on Fridays?", ("asked", "whether the trains run late on Fridays")),
        # Where the subject could end anywhere, or a preposition splits it: quoted as asked.
        ("does my council tax include water?", ("quoted", "does your council tax include water")),
        ("how long does the warranty on the blender last?",
         ("quoted", "how long does the warranty on the blender last")),
        ("is the museum open on bank holidays?", ("quoted", "is the museum open on bank holidays")),
        ("where is it?", ("asked", "where it is")),
        ("my bike chain keeps slipping when I change gear, how do I fix it?",
         ("said", "your bike chain keeps slipping when you change gear, and asked how you fix it")),
    ],
)  # fmt: skip
def test_reported(question: str, said: tuple[str, str]) -> None:
    assert reported(question) == said
