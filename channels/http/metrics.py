"""Process metrics in the Prometheus text exposition format (no client library needed).

Counts requests by method, route template and status, and keeps a latency histogram per route
template. Handoff funnel figures come from the projections and are added by the `/metrics`
route at scrape time.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _labels(**labels: str) -> str:
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels.items()
    )
    return "{" + inner + "}"


class HttpMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self._hist: dict[str, list[int]] = {}
        self._sum: dict[str, float] = defaultdict(float)
        self._count: dict[str, int] = defaultdict(int)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(method, route, status)] += 1
            buckets = self._hist.setdefault(route, [0] * len(_BUCKETS))
            for i, bound in enumerate(_BUCKETS):
                if seconds <= bound:
                    buckets[i] += 1
                    break
            self._sum[route] += seconds
            self._count[route] += 1

    def render(self, gauges: Mapping[str, float] | None = None) -> str:
        lines: list[str] = [
            "# HELP threadline_http_requests_total HTTP requests by route template and status.",
            "# TYPE threadline_http_requests_total counter",
        ]
        with self._lock:
            requests = sorted(self._requests.items())
            hist = {k: list(v) for k, v in self._hist.items()}
            sums = dict(self._sum)
            counts = dict(self._count)
        for (method, route, status), n in requests:
            labels = _labels(method=method, route=route, status=str(status))
            lines.append(f"threadline_http_requests_total{labels} {n}")
        lines += [
            "# HELP threadline_http_request_seconds HTTP request latency by route template.",
            "# TYPE threadline_http_request_seconds histogram",
        ]
        for route in sorted(hist):
            cumulative = 0
            for bound, n in zip(_BUCKETS, hist[route], strict=True):
                cumulative += n
                lines.append(
                    f"threadline_http_request_seconds_bucket{_labels(route=route, le=str(bound))}"
                    f" {cumulative}"
                )
            lines.append(
                f"threadline_http_request_seconds_bucket{_labels(route=route, le='+Inf')}"
                f" {counts[route]}"
            )
            lines.append(f"threadline_http_request_seconds_sum{_labels(route=route)} {sums[route]}")
            lines.append(
                f"threadline_http_request_seconds_count{_labels(route=route)} {counts[route]}"
            )
        lines += _gauges(gauges or {})
        return "\n".join(lines) + "\n"


def _gauges(gauges: Mapping[str, float]) -> Iterable[str]:
    for name in sorted(gauges):
        yield f"# TYPE {name} gauge"
        yield f"{name} {gauges[name]}"
