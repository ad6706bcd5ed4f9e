"""The scenario corpus (tests/corpus/*.yaml), offline, through the real agent, an in-memory
ledger and the first-utterance generator; plus one scenario through the HTTP app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness import corpus as runner
from tests.support.tools import seeded_tools
from threadline.agent.sqltools.sql import SqlToolBackend
from threadline.ledger.store import open_ledger

# The share of scenarios that must pass (the figure is reported by benchmarks.handoff).
PASS_RATE = 0.85


@pytest.fixture(scope="module")
def tools() -> Iterator[SqlToolBackend]:
    with seeded_tools(runner.NOW, runner.TODAY) as backend:
        yield backend


def test_corpus_is_wide_enough() -> None:
    scenarios = runner.load()
    assert len(scenarios) >= 40
    assert len({s.domain for s in scenarios}) >= 8
    assert len({s.id for s in scenarios}) == len(scenarios)


def test_corpus_pass_rate(tools: SqlToolBackend) -> None:
    ledger = open_ledger("memory://")
    try:
        results = [runner.run(s, ledger, tools) for s in runner.load()]
    finally:
        ledger.close()
    failed = [
        f"{r.scenario.id}: {r.failures} :: {r.first_utterance}" for r in results if not r.passed
    ]
    rate = 1 - len(failed) / len(results)
    assert rate >= PASS_RATE, "\n".join(failed)


def test_replay_gives_the_same_first_utterance(tools: SqlToolBackend) -> None:
    scenario = next(s for s in runner.load() if s.id == "retail-address-shipped")
    firsts = []
    for _ in range(2):
        ledger = open_ledger("memory://")
        firsts.append(runner.run(scenario, ledger, tools).first_utterance)
        ledger.close()
    assert firsts[0] == firsts[1]
