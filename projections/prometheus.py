"""Prometheus text exposition (format 0.0.4) of the handoff metrics, for `GET /metrics`.

Everything is a gauge or a summary computed from the read model, so a rebuild (which starts
from zero) never looks like a counter reset in the middle of a scrape.
"""

from __future__ import annotations

from threadline.projections.metrics import QUANTILES, HandoffMetrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _value(v: float | None) -> str:
    if v is None:
        return "NaN"
    if float(v).is_integer():
        return str(int(v))
    return repr(float(v))


def render(m: HandoffMetrics, *, lag: int | None = None, prefix: str = "threadline") -> str:
    lines: list[str] = []

    def gauge(name: str, help_: str, samples: list[tuple[str, float | None]]) -> None:
        full = f"{prefix}_{name}"
        lines.append(f"# HELP {full} {help_}")
        lines.append(f"# TYPE {full} gauge")
        for labels, value in samples:
            lines.append(f"{full}{labels} {_value(value)}")

    gauge("conversations", "Conversations seen by the metrics projection.", [("", m.conversations)])
    gauge(
        "switched_conversations",
        "Conversations with at least one channel switch.",
        [("", m.switched_conversations)],
    )
    gauge("channel_switches", "Legs opened on another channel.", [("", m.channel_switches)])
    gauge(
        "csat_mean",
        "Mean CSAT (1-5) after a switch vs. in never-switched conversations.",
        [
            ('{switch="with"}', m.csat_with_switch.mean),
            ('{switch="without"}', m.csat_without_switch.mean),
        ],
    )
    gauge(
        "csat_responses",
        "CSAT responses behind csat_mean.",
        [
            ('{switch="with"}', m.csat_with_switch.count),
            ('{switch="without"}', m.csat_without_switch.count),
        ],
    )
    gauge(
        "post_switch_resolution_ratio",
        "Switched conversations resolved after the switch / switched conversations.",
        [("", m.post_switch_resolution_rate)],
    )
    gauge(
        "reverification_ratio",
        "Switched conversations re-verified after the switch / switched conversations.",
        [("", m.reverification_rate)],
    )
    f = m.funnel
    gauge(
        "handoffs",
        "Handoffs that reached each stage.",
        [
            (f'{{stage="{stage}"}}', value)
            for stage, value in (
                ("offered", f.offered),
                ("accepted", f.accepted),
                ("completed", f.completed),
                ("expired", f.expired),
                ("declined", f.declined),
            )
        ],
    )
    name = f"{prefix}_handoff_latency_seconds"
    lines.append(f"# HELP {name} Time between handoff steps (occurred_at of the events).")
    lines.append(f"# TYPE {name} summary")
    for transition, lat in m.latency_seconds.items():
        for q, v in zip(QUANTILES, (lat.p50, lat.p90, lat.p95, lat.p99), strict=True):
            lines.append(f'{name}{{transition="{transition}",quantile="{q}"}} {_value(v)}')
        lines.append(f'{name}_sum{{transition="{transition}"}} {_value(lat.sum)}')
        lines.append(f'{name}_count{{transition="{transition}"}} {lat.count}')
    gauge(
        "projection_position",
        "Global sequence the metrics projection has applied up to.",
        [('{projection="metrics"}', m.position)],
    )
    if lag is not None:
        gauge(
            "projection_lag",
            "Global sequence numbers the metrics projection is behind the log.",
            [('{projection="metrics"}', lag)],
        )
    return "\n".join(lines) + "\n"
