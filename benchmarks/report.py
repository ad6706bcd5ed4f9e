"""One benchmark figure, measured against a baseline from the same run.

Each benchmark prints its own readable report and, through `emit`, one machine-readable line
per headline figure (`@figure {json}`); `python -m benchmarks.table` runs the benchmarks,
collects those lines and prints the one table `make bench` shows (figure, baseline, ratio,
goal). Ratios are what to compare across runs: these machines are noisy and shared.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

MARK = "@figure "


@dataclass(frozen=True)
class Figure:
    """`value` in `unit`; `baseline` is the same quantity for the baseline named
    `baseline_name`, measured in the same run. `goal` is the issue's target for `value`
    (`goal_max`, or `goal_min` for rates) and `ratio_max` a target for value / baseline."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    goal_max: float | None = None
    goal_min: float | None = None
    ratio_max: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    def met(self) -> bool | None:
        """Whether every goal set for this figure is met (None: no goal)."""
        checks: list[bool] = []
        if self.goal_max is not None:
            checks.append(self.value <= self.goal_max)
        if self.goal_min is not None:
            checks.append(self.value >= self.goal_min)
        if self.ratio_max is not None and self.ratio is not None:
            checks.append(self.ratio <= self.ratio_max)
        return all(checks) if checks else None

    def goal_text(self) -> str:
        parts = []
        if self.goal_max is not None:
            parts.append(f"≤ {self.goal_max:g} {self.unit}")
        if self.goal_min is not None:
            parts.append(f"≥ {self.goal_min:g} {self.unit}")
        if self.ratio_max is not None:
            parts.append(f"ratio ≤ {self.ratio_max:g}")
        return ", ".join(parts)


def emit(figure: Figure) -> None:
    print(MARK + json.dumps(asdict(figure), sort_keys=True), flush=True)


def parse(lines: str) -> list[Figure]:
    return [
        Figure(**json.loads(line[len(MARK) :]))
        for line in lines.splitlines()
        if line.startswith(MARK)
    ]
