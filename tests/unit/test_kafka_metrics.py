"""The relay's and consumer's /metrics and /healthz endpoints."""

from __future__ import annotations

import httpx

from threadline.streaming.metrics import MetricsServer, consumer_text, relay_text
from threadline.streaming.projector import ConsumerStats
from threadline.streaming.relay import RelayStats


def test_relay_text_reports_lag_failures_and_backoff() -> None:
    s = RelayStats(position=90, max_sequence=100, failures=3, backoff_s=0.8, leader=True)
    text = relay_text(s, "relay")
    assert 'threadline_relay_lag_events{relay="relay"} 10' in text
    assert 'threadline_relay_failures_total{relay="relay"} 3' in text
    assert 'threadline_relay_backoff_seconds{relay="relay"} 0.8' in text
    assert "# TYPE threadline_relay_published_total counter" in text


def test_consumer_text_reports_lag_per_partition() -> None:
    text = consumer_text(ConsumerStats(duplicates=4), {0: 2, 3: 5}, "g")
    assert 'threadline_consumer_lag_messages{group="g",partition="3"} 5' in text
    assert 'threadline_consumer_lag_total{group="g"} 7' in text
    assert 'threadline_consumer_duplicates_total{group="g"} 4' in text


def test_server_serves_metrics_and_health() -> None:
    healthy = [True]
    server = MetricsServer("127.0.0.1", 0, lambda: "x 1\n", lambda: healthy[0]).start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        r = httpx.get(f"{base}/metrics")
        assert (r.status_code, r.text) == (200, "x 1\n")
        assert r.headers["content-type"].startswith("text/plain")
        assert httpx.get(f"{base}/healthz").status_code == 200
        healthy[0] = False
        assert httpx.get(f"{base}/healthz").status_code == 503
        assert httpx.get(f"{base}/nope").status_code == 404
    finally:
        server.close()
