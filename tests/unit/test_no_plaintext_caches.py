"""No process-wide cache keeps a visitor's text past an erasure: the pack scores of a chat turn
and the question stems of a fold are memoised per turn / per fold; the one process-wide cache
of visitors' words, the text analysis (`projections/text.py`, which keeps a repeat fold ~10×
cheaper), is emptied whenever `SubjectErased` is appended."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.tools import seeded_tools
from tests.unit.handoff.handoff_helpers import CHAT_LEG, add, start_chat
from threadline.agent.chat import ChatAgent
from threadline.agent.factory import build_agent
from threadline.handoff.settings import HandoffSettings
from threadline.ledger.envelope import NewEvent
from threadline.ledger.events import MessagePosted, SubjectErased
from threadline.ledger.store import open_ledger
from threadline.projections import text as text_analysis
from threadline.projections.context import build_context

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ANALYSIS = "threadline.projections.text._cached"  # emptied by an erasure (test below)


def _caches() -> dict[str, Any]:
    """Every functools cache at module level (or on a module's class) in threadline."""
    found: dict[str, Any] = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith("threadline") or module is None:
            continue
        for attr, value in list(vars(module).items()):
            holders = [(attr, value)]
            if isinstance(value, type) and value.__module__ == name:
                holders += [(f"{attr}.{k}", v) for k, v in vars(value).items()]
            for label, obj in holders:
                if callable(getattr(obj, "cache_info", None)):
                    found[f"{name}.{label}"] = obj
    return found


def _sizes() -> dict[str, int]:
    return {k: f.cache_info().currsize for k, f in _caches().items()}


@pytest.fixture
def chat() -> Iterator[ChatAgent]:
    ledger = open_ledger("memory://")
    start_chat(ledger, "A")
    with seeded_tools(NOW) as tools:
        yield ChatAgent(ledger, build_agent(tools, HandoffSettings(), clock=lambda: NOW))
    ledger.close()


def test_a_turn_and_a_fold_leave_no_visitor_text_in_a_global_cache(chat: ChatAgent) -> None:
    # Warm the caches keyed by pack words and settings, which hold no visitor text.
    for text in ("Hi, a question about my January claim", "where is order 4417?"):
        chat.visitor_turn("A", text, leg_id=CHAT_LEG)
        build_context(chat.ledger.read("A"))
    before = _sizes()
    secret = "Why was my claim for the Zanzibar-7731 dental bill refused?"
    chat.visitor_turn("A", secret, leg_id=CHAT_LEG)
    # An agent turn that can answer: the fold compares it with the open question's stems.
    add(chat.ledger, "A", MessagePosted(role="agent", text="The Zanzibar-7731 bill was paid."))
    context = build_context(chat.ledger.read("A"))
    assert [q.answered for q in context.questions if q.text == secret] == [True]
    grown = {
        k: (before.get(k, 0), n)
        for k, n in _sizes().items()
        if n > before.get(k, 0) and k != ANALYSIS
    }
    assert grown == {}, f"global caches took entries from the visitor's turn: {grown}"


def test_an_erasure_empties_the_text_analysis_cache(chat: ChatAgent) -> None:
    stop = text_analysis.clear_on_erasure(chat.ledger)
    try:
        chat.visitor_turn("A", "my name is Zora Quill and my order is 88123", leg_id=CHAT_LEG)
        build_context(chat.ledger.read("A"))
        assert _sizes()[ANALYSIS] > 0
        add(chat.ledger, "A", MessagePosted(role="visitor", text="one more thing"))
        assert _sizes()[ANALYSIS] > 0  # an ordinary append keeps it
        chat.ledger.append("A", NewEvent("SubjectErased", SubjectErased(subject="s1")))
        assert _sizes()[ANALYSIS] == 0
    finally:
        stop()
