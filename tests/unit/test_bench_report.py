"""benchmarks.report / benchmarks.table: figures survive the round trip through a
benchmark's output, goals and regressions are judged in the right direction."""

from __future__ import annotations

import pytest

from benchmarks.report import Figure, emit, parse
from benchmarks.table import regressions, table


def test_figures_round_trip_through_output(capsys: pytest.CaptureFixture[str]) -> None:
    fig = Figure("append", 1.5, "ms", baseline=1.0, baseline_name="raw", ratio_max=1.1)
    emit(fig)
    out = capsys.readouterr().out
    assert parse("noise\n" + out + "more noise\n") == [fig]


def test_goals_and_ratio() -> None:
    assert Figure("a", 1.5, "ms", baseline=1.0, ratio_max=1.1).met() is False
    assert Figure("a", 1.05, "ms", baseline=1.0, ratio_max=1.1).met() is True
    assert Figure("r", 900, "appends/s", goal_min=1000).met() is False
    assert Figure("r", 900, "appends/s").met() is None
    assert "**no**" in table([Figure("r", 900, "appends/s", goal_min=1000)])


def test_regression_direction() -> None:
    recorded = [
        Figure("latency", 2.0, "ms", baseline=1.0),
        Figure("rate", 1000, "appends/s", baseline=1000, goal_min=1500),
    ]
    same = [Figure("latency", 2.2, "ms", baseline=1.0), Figure("rate", 950, "appends/s", 1000)]
    assert regressions(same, recorded, tolerance=0.5) == []
    slower = [Figure("latency", 4.0, "ms", baseline=1.0)]
    assert len(regressions(slower, recorded, tolerance=0.5)) == 1
    fewer = [Figure("rate", 400, "appends/s", baseline=1000, goal_min=1500)]
    assert len(regressions(fewer, recorded, tolerance=0.5)) == 1
    more = [Figure("rate", 3000, "appends/s", baseline=1000, goal_min=1500)]
    assert regressions(more, recorded, tolerance=0.5) == []
