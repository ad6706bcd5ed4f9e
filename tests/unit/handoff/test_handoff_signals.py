from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadline.handoff.signals import (
    DEFAULT_THRESHOLD,
    asks_for_person,
    detect,
    should_offer,
    similarity,
)


def kinds(text: str, **kw: object) -> dict[str, float]:
    return {s.kind: s.score for s in detect(text, **kw)}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Can I talk to someone?", "explicit_request_human"),
        ("I'd like to speak with a real person", "explicit_request_human"),
        ("please just call me", "explicit_request"),
        ("Can we switch to voice?", "explicit_request"),
        ("could someone phone me about this", "explicit_request"),
    ],
)
def test_explicit_requests_offer(text: str, kind: str) -> None:
    signal = should_offer(detect(text))
    assert signal is not None
    assert signal.kind == kind
    assert (asks_for_person(detect(text)) is not None) == (kind == "explicit_request_human")


@pytest.mark.parametrize(
    "text",
    [
        "Hi, I have a question about my January claim",
        "My date of birth is 1984-03-12 and my member number is MBR-100234",
        "Call me Sam, by the way",
        "thanks, that's all",
        "What's the status of claim CLM-4821?",
    ],
)
def test_ordinary_turns_do_not_offer(text: str) -> None:
    assert should_offer(detect(text)) is None


def test_compliance() -> None:
    assert kinds("I need to sign a HIPAA authorization for my wife")["compliance_step"] >= 0.9
    assert kinds("Do you need my consent to share this?")["compliance_step"] >= DEFAULT_THRESHOLD
    assert kinds("is this legal?")["compliance_step"] < DEFAULT_THRESHOLD


def test_complex_pricing_accumulates() -> None:
    simple = kinds("how much is the premium?").get("complex_pricing", 0.0)
    hard = kinds(
        "Could you compare the Silver plan and Gold plan with a dental rider and a vision "
        "add-on? Premium on a $500 vs $1,000 deductible?"
    )["complex_pricing"]
    assert simple < DEFAULT_THRESHOLD <= hard
    assert hard == 1.0


def test_frustration_from_wording_caps_and_repeats() -> None:
    assert kinds("THIS IS RIDICULOUS, I ALREADY TOLD YOU")["frustration_spike"] >= 0.6
    repeated = kinds(
        "what is the status of my January claim",
        earlier_visitor_turns=["What's the status of my January claim?"],
        recent_failures=2,
    )
    assert repeated["frustration_spike"] >= DEFAULT_THRESHOLD
    assert "frustration_spike" not in kinds("ok", recent_failures=3)


def test_evidence_quotes_what_was_said() -> None:
    (signal,) = detect("can I speak to a human")
    assert "speak to a human" in signal.evidence
    event = signal.to_event()
    assert event.signal == "explicit_request_human"
    assert 0.0 <= event.score <= 1.0


def test_similarity_ignores_short_turns() -> None:
    assert similarity("yes", "yes") == 0.0
    assert similarity("status of my January claim", "status of my January claim") == 1.0


@given(st.text(max_size=400), st.lists(st.text(max_size=100), max_size=5), st.integers(0, 9))
def test_scores_bounded_and_deterministic(text: str, earlier: list[str], failures: int) -> None:
    first = detect(text, earlier_visitor_turns=earlier, recent_failures=failures)
    assert first == detect(text, earlier_visitor_turns=earlier, recent_failures=failures)
    for s in first:
        assert 0.3 <= s.score <= 1.0
        s.to_event()  # always a valid event payload


def test_the_issue_14_turns_fire_with_their_reasons() -> None:
    (angry,) = detect("This is the THIRD time I'm asking and nobody helps, I'm furious!!!")
    assert angry.kind == "frustration_spike"
    assert should_offer([angry]) is angry
    for reason in ('"furious"', '"THIRD time"', '"nobody helps"'):
        assert reason in angry.evidence
    (quote,) = detect(
        "I need a quote for a bundle: car and home, three drivers, with the multi-car "
        "discount and the safe driver discount"
    )
    assert quote.kind == "complex_pricing"
    assert quote.score >= 0.6
    assert "three drivers" in quote.evidence
    assert detect("what is the price of a return label?") == []
