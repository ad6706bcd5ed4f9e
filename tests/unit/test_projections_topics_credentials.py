"""A credential label ("policy number") is not a topic; the policy itself still is."""

from __future__ import annotations

import pytest

from threadline.projections.topics import topic_phrase


@pytest.mark.parametrize(
    "text",
    [
        "and the policy number is POL-558812",
        "my membership ID is MBR-100234",
        "account no. 12345, born 1984-03-12",
    ],
)
def test_credential_labels_are_not_topics(text: str) -> None:
    assert topic_phrase(text) is None


def test_the_topic_survives_a_credential_in_the_same_turn() -> None:
    assert topic_phrase("policy number POL-1, it's about my January claim") == (
        "January claim",
        "claim",
    )


def test_the_policy_itself_is_still_a_topic() -> None:
    assert topic_phrase("what does my policy cover?") == ("policy", "policy")
