from __future__ import annotations

import pytest

from threadline.projections.entities import extract
from threadline.projections.topics import answers, questions, topic_phrase


def pairs(text: str) -> list[tuple[str, str]]:
    return [(f.kind, f.value) for f in extract(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My claim number is CLM-48213.", [("claim_number", "CLM-48213")]),
        ("claim #clm-48213", [("claim_number", "CLM-48213")]),
        ("policy no. P-123456", [("policy_number", "P-123456")]),
        ("policy #POL-99812", [("policy_number", "POL-99812")]),
        ("member ID: M99812", [("member_number", "M99812")]),
        ("order 55120 has not arrived", [("order_number", "55120")]),
        (
            "both claims CLM-1234 and CLM-5678",
            [("claim_number", "CLM-1234"), ("claim_number", "CLM-5678")],
        ),
        ("ORD12345 and TKT-0042", [("order_number", "ORD12345"), ("reference", "TKT-0042")]),
        ("the case number is 778812", [("reference", "778812")]),
        ("my claim 2023 was late", []),  # a year, not an id
        ("REF-22", []),  # too short to be an id
    ],
)
def test_reference_numbers(text: str, expected: list[tuple[str, str]]) -> None:
    assert pairs(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("about my January claim", [("month", "January")]),
        ("my claim from march", [("month", "March")]),
        ("may I ask something", []),
        ("it was in May", [("month", "May")]),
        ("Jan 15, 2024", [("date", "2024-01-15")]),
        ("on 15 January 2024", [("date", "2024-01-15")]),
        ("the 3rd of March", [("date", "March 3")]),
        ("March 3rd please", [("date", "March 3")]),
        ("2024-02-29 not 2024-02-30", [("date", "2024-02-29")]),
        ("01/15/2024", [("date", "01/15/2024")]),
        ("January 2024", [("month", "January 2024")]),
        ("February 31", [("month", "February")]),  # not a date: only the month remains
    ],
)
def test_dates_and_months(text: str, expected: list[tuple[str, str]]) -> None:
    assert pairs(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I was charged $1,250.50", [("amount", "USD 1250.50")]),
        ("€40", [("amount", "EUR 40.00")]),
        ("£ 9.5", [("amount", "GBP 9.50")]),
        ("USD 120 and 30 euros", [("amount", "USD 120.00"), ("amount", "EUR 30.00")]),
        ("120 dollars", [("amount", "USD 120.00")]),
        ("20 bucks", [("amount", "USD 20.00")]),
    ],
)
def test_amounts(text: str, expected: list[tuple[str, str]]) -> None:
    assert pairs(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I'm on the Gold Plus plan", [("product", "Gold Plus plan")]),
        ("my Premium Health Cover", [("product", "Premium Health Cover")]),
        ("My policy lapsed", []),
        ("my plan", []),
    ],
)
def test_products(text: str, expected: list[tuple[str, str]]) -> None:
    assert pairs(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My name is jane doe and I need help", [("name", "Jane Doe")]),
        ("Hi, this is Sarah from billing", [("name", "Sarah")]),
        ("I'm Fine, thanks", []),
        ("i am calling about my bill", []),
        ("call me Al", [("name", "Al")]),
    ],
)
def test_names(text: str, expected: list[tuple[str, str]]) -> None:
    assert pairs(text) == expected


def test_spans_point_at_the_written_text() -> None:
    text = "Claim clm-7781 for $20 on Jan 3"
    for found in extract(text):
        assert text[found.start : found.end] == found.text
    assert [f.text for f in extract(text)] == ["clm-7781", "$20", "Jan 3"]


def test_overlaps_keep_the_longest_match() -> None:
    # "January" alone is a month, but inside "15 January 2024" only the date counts.
    assert pairs("on 15 January 2024") == [("date", "2024-01-15")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I have a question about my January claim", "January claim"),
        ("I was asking about my claim from March", "March claim"),
        ("my dental insurance claim was denied", "dental insurance claim"),
        ("I want to check claim status", "claim"),
        ("It was on 15 January 2024, policy #POL-1", "policy"),
        ("Where are my refunds?", "refund"),
        ("hello there", None),
    ],
)
def test_topic_phrase(text: str, expected: str | None) -> None:
    found = topic_phrase(text)
    assert (found[0] if found else None) == expected


def test_questions_and_answers() -> None:
    assert questions("Hi. Where is my refund? It was due in May.") == ["Where is my refund?"]
    assert questions("Can you check my claim") == ["Can you check my claim"]
    assert questions("I was wondering if my claim went through.") == [
        "I was wondering if my claim went through."
    ]
    assert questions("Thanks, that's all.") == []
    assert not answers("Let me check that for you.")
    assert not answers("What is your claim number?")
    assert answers("Your claim was approved on January 20.")
