"""A question that runs on into a statement in the same turn: the statement carries the
question's facts and is restated, though the projection keeps it neither as a question nor
as a request."""

from __future__ import annotations

from tests.unit.handoff.handoff_helpers import add, start_chat
from threadline.handoff.first_utterance import OfflineUtterances
from threadline.handoff.restate import restate
from threadline.ledger.events import MessagePosted
from threadline.ledger.store import open_ledger
from threadline.projections.context import build_context
from threadline.projections.context_model import AgentContext


def context_of(*visitor: str) -> AgentContext:
    ledger = open_ledger("memory://")
    try:
        start_chat(ledger, "C")
        for text in visitor:
            add(ledger, "C", MessagePosted(role="visitor", text=text))
            add(ledger, "C", MessagePosted(role="agent", text="I've noted that for our team."))
        return build_context(list(ledger.read("C")))
    finally:
        ledger.close()


def test_the_sentence_after_a_question_is_restated() -> None:
    context = context_of("how come the ticket cost so much?? we flew out of Porto on a Sunday")
    said = restate(context).said
    assert any("you flew out of Porto on a Sunday" in s for s in said), said
    first = OfflineUtterances().generate(context, level=0, reason=None)
    assert "Porto" in first


def test_a_label_or_identity_after_a_question_is_not_restated() -> None:
    context = context_of(
        "is my parcel still coming today? ref AB-12345",
        "where is the refund? my date of birth is 3 May 1980",
    )
    said = " ".join(restate(context).said)
    assert "ref AB-12345" not in said  # a label: its fact is noted, not a sentence
    assert "1980" not in said  # identity material is never restated
