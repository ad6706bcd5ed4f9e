"""`make bench` / `make bench-quick`: run the benchmarks, print one table.

    python -m benchmarks.table                 # every benchmark, full size
    python -m benchmarks.table --quick         # under a minute; compares with the recording
    python -m benchmarks.table --record        # also writes benchmarks/recorded.json and the
                                               # table in docs/performance.md
    python -m benchmarks.table --quick --record  # the recording --quick compares with

Each row is a figure a benchmark emitted (`benchmarks.report.emit`): its value, the baseline
measured in the same run, the ratio, and the goal. `--quick` runs small sizes and compares
each figure with the recorded one (ratio when the figure has a baseline, since ratios survive
a noisy machine better than absolute times); a figure worse by more than `--tolerance` is
reported as a regression and the exit status is 1. It is not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks.report import Figure, parse

ROOT = Path(__file__).resolve().parents[1]
RECORDED = {
    False: ROOT / "benchmarks" / "recorded.json",
    True: ROOT / "benchmarks" / "recorded-quick.json",
}
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench-table -->", "<!-- /bench-table -->"

FULL: list[list[str]] = [
    ["benchmarks.ledger", "--backend", "all"],
    ["benchmarks.handoff"],
    ["benchmarks.projections"],
    ["benchmarks.replay", "--sizes", "10000,100000,1000000", "--http"],
    ["benchmarks.replay", "--backend", "postgres", "--sizes", "10000,100000"],
    ["benchmarks.http", "--backend", "sqlite"],
    ["benchmarks.http", "--backend", "postgres"],
    ["benchmarks.sse_memory", "--streams", "1000"],
    ["benchmarks.voice"],
    ["benchmarks.kafka"],
    ["benchmarks.privacy"],
    ["benchmarks.checkpoint"],
]
QUICK: list[list[str]] = [
    ["benchmarks.ledger", "--backend", "sqlite", "--appends", "300", "--no-replay"],
    ["benchmarks.handoff", "--turns", "40", "--handoffs", "15"],
    ["benchmarks.projections", "--backend", "sqlite", "--quick"],
    ["benchmarks.replay", "--sizes", "5000,20000", "--repeats", "15", "--http"],
    ["benchmarks.http", "--backend", "sqlite", "--seconds", "4"],
    ["benchmarks.sse_memory", "--streams", "300"],
]


def run(commands: list[list[str]]) -> tuple[list[Figure], list[str]]:
    figures: list[Figure] = []
    failures: list[str] = []
    for command in commands:
        started = time.perf_counter()
        print(f"$ python -m {' '.join(command)}", flush=True)
        done = subprocess.run(
            [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True
        )
        seconds = time.perf_counter() - started
        found = parse(done.stdout)
        print(f"  {len(found)} figures in {seconds:.0f} s (exit {done.returncode})", flush=True)
        if done.returncode != 0:
            failures.append(f"{' '.join(command)}: exit {done.returncode}: {done.stderr[-300:]}")
        figures.extend(found)
    return figures, failures


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def table(figures: list[Figure]) -> str:
    head = "| figure | value | baseline (same run) | ratio | goal | met |"
    rows = [head, "|---|---|---|---|---|---|"]
    for f in figures:
        base = f"{_num(f.baseline)} ({f.baseline_name})" if f.baseline is not None else "—"
        met = {True: "yes", False: "**no**", None: ""}[f.met()]
        ratio = f"{f.ratio:.2f}×" if f.ratio is not None else "—"
        rows.append(
            f"| {f.name} | {_num(f.value)} {f.unit} | {base} | {ratio} | {f.goal_text()} | {met} |"
        )
    return "\n".join(rows)


def regressions(figures: list[Figure], recorded: list[Figure], tolerance: float) -> list[str]:
    """Figures worse than the recording by more than `tolerance` (0.5 = 50 %)."""
    by_name = {f.name: f for f in recorded}
    found: list[str] = []
    for f in figures:
        old = by_name.get(f.name)
        if old is None:
            continue
        new_v, old_v = (f.ratio, old.ratio) if f.ratio is not None else (f.value, old.value)
        if new_v is None or old_v is None or old_v == 0:
            continue
        higher_is_better = f.goal_min is not None
        change = new_v / old_v
        worse = change < 1 / (1 + tolerance) if higher_is_better else change > 1 + tolerance
        if worse:
            found.append(f"{f.name}: {new_v:.3g} now, {old_v:.3g} recorded ({change:.2f}×)")
    return found


def write_doc(text: str, command: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    block = f"{BEGIN}\nMade by `{command}` on {time.strftime('%Y-%m-%d')}.\n\n{text}\n{END}"
    if BEGIN in doc and END in doc:
        doc = doc[: doc.index(BEGIN)] + block + doc[doc.index(END) + len(END) :]
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(doc, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, compare")
    parser.add_argument("--record", action="store_true", help="write recorded.json and docs")
    parser.add_argument("--tolerance", type=float, default=0.5)
    args = parser.parse_args()
    figures, failures = run(QUICK if args.quick else FULL)
    text = table(figures)
    print("\n" + text)
    status = 0
    if failures:
        print("\nbenchmarks that failed:\n  " + "\n  ".join(failures))
        status = 1
    recording = RECORDED[args.quick]
    if args.quick and recording.exists() and not args.record:
        recorded = [Figure(**d) for d in json.loads(recording.read_text(encoding="utf-8"))]
        found = regressions(figures, recorded, args.tolerance)
        print(f"\ncompared with {recording.relative_to(ROOT)} (tolerance {args.tolerance:.0%}):")
        print("  " + ("\n  ".join(found) if found else "no regression"))
        status = status or (1 if found else 0)
    if args.record:
        recording.write_text(
            json.dumps([asdict(f) for f in figures], indent=1, sort_keys=True) + "\n",
            encoding="utf-8",
        )
        write_doc(text, f"python -m benchmarks.table{' --quick' if args.quick else ''} --record")
    sys.exit(status)


if __name__ == "__main__":
    main()
