from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.scenarios import scenario
from threadline.ledger.envelope import NewEvent
from threadline.ledger.store import open_ledger
from threadline.projections.errors import ProjectionError, UnknownProjectionError
from threadline.projections.metrics import build_metrics
from threadline.projections.prometheus import render
from threadline.projections.service import MetricsService, open_metrics_view, open_view
from threadline.projections.settings import ProjectionSettings
from threadline.projections.view_sqlite import SQLiteMetricsView
from threadline.projections.views import MemoryMetricsView


def test_prometheus_text_has_every_figure() -> None:
    text = render(build_metrics(scenario()), lag=3)
    lines = text.splitlines()
    assert "threadline_conversations 10" in lines
    assert "threadline_reverification_ratio 0.25" in lines
    assert 'threadline_handoffs{stage="offered"} 6' in lines
    assert 'threadline_csat_mean{switch="with"} 3.6666666666666665' in lines
    assert (
        'threadline_handoff_latency_seconds{transition="offer_to_accept",quantile="0.5"} 4' in lines
    )
    assert 'threadline_handoff_latency_seconds_count{transition="offer_to_accept"} 4' in lines
    assert 'threadline_projection_lag{projection="metrics"} 3' in lines
    assert text.endswith("\n")
    # Every sample line belongs to a declared family.
    families = {line.split()[2] for line in lines if line.startswith("# TYPE")}
    for line in lines:
        if not line.startswith("#"):
            name = line.split("{")[0].split()[0]
            assert name.removesuffix("_sum").removesuffix("_count") in families


def test_empty_metrics_render_nan_not_errors() -> None:
    text = render(build_metrics([]))
    assert "threadline_reverification_ratio NaN" in text
    assert "projection_lag" not in text


def test_open_metrics_view_by_url(tmp_path: Path) -> None:
    assert isinstance(open_metrics_view("memory://"), MemoryMetricsView)
    view = open_metrics_view(f"sqlite:///{tmp_path / 'x.db'}")
    assert isinstance(view, SQLiteMetricsView)
    view.close()
    with pytest.raises(ProjectionError, match="unsupported"):
        open_metrics_view("mysql://x")
    with pytest.raises(UnknownProjectionError, match="known: metrics"):
        open_view("nope", "memory://")


def test_metrics_service_follows_the_ledger() -> None:
    ledger = open_ledger("memory://")
    service = MetricsService(
        ledger,
        open_metrics_view("memory://"),
        ProjectionSettings(projections_poll_interval_s=5),
    )
    service.start()
    try:
        ledger.append("c1", NewEvent("ConversationStarted", {"channel": "chat"}))
        ledger.append("c1", NewEvent("LegOpened", {"channel": "pstn"}, leg_id="p"))
        deadline = time.monotonic() + 5
        while service.handoff_metrics()["position"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        doc = service.handoff_metrics()
        assert (doc["conversations"], doc["channel_switches"], doc["lag"]) == (1, 1, 0)
        assert "threadline_channel_switches 1" in service.prometheus_text()
    finally:
        service.close()
        ledger.close()
