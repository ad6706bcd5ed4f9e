"""Prometheus text and a tiny health/metrics HTTP endpoint for the relay and the consumer
(stdlib only: these processes serve nothing else)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from threadline.streaming.projector import ConsumerStats
from threadline.streaming.relay import RelayStats


def _lines(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> list[str]:
    out = [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
    out += [f"{name}{labels} {value:g}" for labels, value in samples]
    return out


def relay_text(s: RelayStats, relay: str, partitions: dict[int, RelayStats] | None = None) -> str:
    """`partitions` (a per-partition relay): each log partition's position, lag, failures
    and leadership as well, labelled `partition`, so one stuck partition is visible."""
    lbl = f'{{relay="{relay}"}}'
    lines: list[str] = []
    for name, kind, help_, value in (
        (
            "threadline_relay_position",
            "gauge",
            "Global sequence published and checkpointed.",
            s.position,
        ),
        (
            "threadline_relay_max_sequence",
            "gauge",
            "Highest global sequence in the ledger.",
            s.max_sequence,
        ),
        ("threadline_relay_lag_events", "gauge", "Ledger events not yet on the topic.", s.lag),
        ("threadline_relay_pending_gaps", "gauge", "Missing sequences still waited for.", s.gaps),
        (
            "threadline_relay_published_total",
            "counter",
            "Events acknowledged by the broker.",
            s.published,
        ),
        (
            "threadline_relay_failures_total",
            "counter",
            "Failed publish/checkpoint attempts.",
            s.failures,
        ),
        (
            "threadline_relay_consecutive_failures",
            "gauge",
            "Failures since the last success.",
            s.consecutive_failures,
        ),
        ("threadline_relay_backoff_seconds", "gauge", "Current retry backoff.", s.backoff_s),
        (
            "threadline_relay_leader",
            "gauge",
            "1 if this relay holds the checkpoint.",
            int(s.leader),
        ),
        (
            "threadline_relay_last_success_timestamp_seconds",
            "gauge",
            "When the relay last completed a step.",
            s.last_success,
        ),
    ):
        lines += _lines(name, kind, help_, [(lbl, float(value))])
    for name, kind, help_, attr in (
        (
            "threadline_relay_partition_position",
            "gauge",
            "Partition sequence checkpointed.",
            "position",
        ),
        (
            "threadline_relay_partition_lag_events",
            "gauge",
            "Partition events not yet on the topic.",
            "lag",
        ),
        ("threadline_relay_partition_failures_total", "counter", "Failed attempts.", "failures"),
        ("threadline_relay_partition_leader", "gauge", "1 if this process relays it.", "leader"),
    ):
        if partitions:
            samples = [
                (f'{{relay="{relay}",partition="{p}"}}', float(getattr(ps, attr)))
                for p, ps in sorted(partitions.items())
            ]
            lines += _lines(name, kind, help_, samples)
    return "\n".join(lines) + "\n"


def consumer_text(s: ConsumerStats, lag: dict[int, int], group: str) -> str:
    g = f'group="{group}"'
    lines: list[str] = []
    for name, kind, help_, value in (
        (
            "threadline_consumer_received_total",
            "counter",
            "Events read from the topic.",
            s.received,
        ),
        ("threadline_consumer_applied_total", "counter", "Events applied to the view.", s.applied),
        (
            "threadline_consumer_duplicates_total",
            "counter",
            "Redelivered events the view already had.",
            s.duplicates,
        ),
        (
            "threadline_consumer_held_back_total",
            "counter",
            "Events that arrived before an earlier one of their conversation.",
            s.held_back,
        ),
        (
            "threadline_consumer_bad_records_total",
            "counter",
            "Records that were not envelopes.",
            s.bad_records,
        ),
        (
            "threadline_consumer_view_position",
            "gauge",
            "Highest global sequence applied to the view.",
            s.view_position,
        ),
    ):
        lines += _lines(name, kind, help_, [(f"{{{g}}}", float(value))])
    lines += _lines(
        "threadline_consumer_lag_messages",
        "gauge",
        "Records behind the partition's high watermark.",
        [(f'{{{g},partition="{p}"}}', float(v)) for p, v in sorted(lag.items())],
    )
    lines += _lines(
        "threadline_consumer_lag_total",
        "gauge",
        "Records behind, all partitions.",
        [(f"{{{g}}}", float(sum(lag.values())))],
    )
    return "\n".join(lines) + "\n"


class MetricsServer:
    """GET /metrics (Prometheus text) and GET /healthz (200 when `healthy()`, else 503)."""

    def __init__(
        self, host: str, port: int, render: Callable[[], str], healthy: Callable[[], bool]
    ) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    body, status = outer.render().encode(), 200
                    ctype = "text/plain; version=0.0.4"
                elif self.path == "/healthz":
                    ok = outer.healthy()
                    body, status = (b"ok\n", 200) if ok else (b"unhealthy\n", 503)
                    ctype = "text/plain"
                else:
                    body, status, ctype = b"not found\n", 404, "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return  # scrapes every few seconds would flood the log

        self.render = render
        self.healthy = healthy
        self._server = ThreadingHTTPServer((host, port), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def fresh(last: Callable[[], float], within_s: float) -> Callable[[], bool]:
    """Health: the loop completed a step recently."""
    return lambda: time.time() - last() < within_s
