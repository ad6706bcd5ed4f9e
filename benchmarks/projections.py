"""Projections benchmark: `python -m benchmarks.projections [--backend sqlite|postgres|all]
[--quick]`.

1. Agent context for a 1,000-event conversation (goal ≤ 10 ms): `build_context` over events
   already in memory, and read-from-SQLite + fold, against baselines measured in the same
   run — a bare dispatch loop over the same events (the floor of any fold) and the
   transcript and identity folds.
2. Metrics rebuild throughput (events/s) on SQLite and PostgreSQL: `threadline projections
   rebuild` (reset + catch-up through the read model, batches of 500, one transaction each)
   against reading the same global log without applying it, and against the in-memory
   fold (`build_metrics`).

These machines are noisy: only same-run ratios mean anything. PostgreSQL: a throwaway
cluster (harness/postgres.py) unless TL_BENCH_POSTGRES_URL names a server.
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.ledger import postgres_server  # noqa: E402
from benchmarks.report import Figure, emit  # noqa: E402
from threadline.ledger.envelope import NewEvent, RecordedEvent  # noqa: E402
from threadline.ledger.store import Ledger, open_ledger  # noqa: E402
from threadline.projections.context import AgentContext, build_context  # noqa: E402
from threadline.projections.identity import build_identity  # noqa: E402
from threadline.projections.metrics import build_metrics  # noqa: E402
from threadline.projections.service import open_metrics_view, runner_for  # noqa: E402
from threadline.projections.text import clear_cache  # noqa: E402
from threadline.projections.transcript import build_transcript  # noqa: E402

VISITOR = [
    "Hi, I have a question about my January claim.",
    "My claim number is CLM-{n}, why was only ${a} paid?",
    "It was for the appointment on {d} March 2024.",
    "I'm on the Gold Plus plan, policy #POL-{n}.",
    "ok",
    "thanks",
    "Can you explain the deductible again?",
    "I already sent the receipts last week",
    "yes",
    "That doesn't make sense to me, I paid ${a} in total",
    "Could I talk to someone on the phone instead?",
    "My name is Jane Doe and my member ID: MBR-{n}",
]
AGENT = [
    "Let me check that for you.",
    "Your claim CLM-{n} was processed on {d} January and ${a} was paid.",
    "The deductible of ${a} applied to this claim.",
    "I can see the receipts, thank you.",
    "Is there anything else I can help you with?",
    "Sure, I can explain that.",
    "The remaining amount is ${a}, due by {d} February.",
]


def conversation_events(n_events: int, seed: int = 7) -> list[NewEvent]:
    """A realistic 1,000-event conversation: mostly turns, with identity, tools, signals,
    a handoff to voice and voice turns, as adapters would append it."""
    rnd = random.Random(seed)

    def fill(template: str) -> str:
        return template.format(
            n=rnd.randint(10000, 99999), a=rnd.randint(20, 900), d=rnd.randint(1, 28)
        )

    def ev(type_: str, leg: str | None, **data: Any) -> NewEvent:
        return NewEvent(type_, data, leg_id=leg)

    out = [
        ev("ConversationStarted", None, channel="chat"),
        ev("LegOpened", "chat-1", channel="chat"),
    ]
    leg = "chat-1"
    while len(out) < n_events:
        k = len(out)
        roll = rnd.random()
        if (
            k >= 40
            and len(out) < n_events // 2
            and not any(e.type == "IdentityVerified" for e in out)
        ):
            out.append(ev("IdentityVerified", leg, method="otp", level=2, subject="m1"))
        elif k >= n_events // 2 and leg == "chat-1":
            leg = "voice-1"
            out += [
                ev("HandoffOffered", "chat-1", handoff_id="h1"),
                ev("HandoffAccepted", "chat-1", handoff_id="h1"),
                ev("LegOpened", leg, channel="webrtc"),
                ev("IdentityVerified", leg, method="handoff_token", level=2, subject="m1"),
                ev("HandoffCompleted", leg, handoff_id="h1", leg_id=leg, first_utterance="Hi"),
            ]
        elif roll < 0.04:
            out.append(ev("ToolCalled", leg, call_id=f"t{k}", name="lookup", arguments={"k": k}))
            out.append(ev("ToolResulted", leg, call_id=f"t{k}", result={"paid": k}))
        elif roll < 0.06:
            out.append(
                ev("EscalationSignalDetected", leg, signal="frustration_spike", score=0.6,
                   evidence="repeated question")
            )  # fmt: skip
        elif leg == "voice-1" and roll < 0.5:
            text = fill(rnd.choice(VISITOR))
            out.append(
                ev("UtteranceTranscribed", leg, role="visitor", text=text, start_ms=0,
                   end_ms=900, confidence=0.9)
            )  # fmt: skip
        elif leg == "voice-1":
            text = fill(rnd.choice(AGENT))
            cut = rnd.random() < 0.2
            spoken = text[: len(text) // 2] if cut else None
            out.append(ev("AgentSpoke", leg, text=text, interrupted=cut, spoken_text=spoken))
        else:
            role = "visitor" if roll < 0.55 else "agent"
            text = fill(rnd.choice(VISITOR if role == "visitor" else AGENT))
            out.append(ev("MessagePosted", leg, role=role, text=text))
    return out[:n_events]


def recorded(conversation_id: str, new: list[NewEvent]) -> list[RecordedEvent]:
    """RecordedEvents built without a store (the fold's input, minus I/O)."""
    from threadline.ledger.events import parse_data

    t0 = datetime(2025, 1, 6, tzinfo=UTC)
    return [
        RecordedEvent(
            event_id=e.event_id,
            conversation_id=conversation_id,
            position=i,
            sequence=i,
            type=e.type,
            data=parse_data(e.type, e.data),
            occurred_at=t0 + timedelta(seconds=i),
            recorded_at=t0 + timedelta(seconds=i),
            leg_id=e.leg_id,
            actor=e.actor,
            schema_version=1,
            prev_hash="",
            hash="",
        )
        for i, e in enumerate(new, start=1)
    ]


def sample_ms(fn: Callable[[], Any], repeats: int) -> tuple[float, float, float]:
    """(median wall ms, p90 wall ms, median CPU ms): CPU time shows the cost without the
    waiting a loaded machine adds."""
    for _ in range(3):
        fn()
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        cpu.append((time.process_time() - c0) * 1000)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9)], statistics.median(cpu)


def bench_context(n_events: int, repeats: int) -> None:
    events = recorded("bench-ctx", conversation_events(n_events))

    def floor() -> int:
        n = 0
        table = {"MessagePosted": 1, "UtteranceTranscribed": 1, "AgentSpoke": 1}
        for e in events:
            n += table.get(e.type, 0) + len(getattr(e.data, "text", ""))
        return n

    def cold_context() -> AgentContext:
        clear_cache()  # every turn's text analysed afresh, as on a process's first build
        return build_context(events)

    rows = [
        ("bare dispatch loop (floor)", *sample_ms(floor, repeats)),
        ("identity fold", *sample_ms(lambda: build_identity(events), repeats)),
        ("transcript fold", *sample_ms(lambda: build_transcript(events), repeats)),
        ("agent context, cold text cache", *sample_ms(cold_context, repeats)),
        ("agent context, warm (a rebuild)", *sample_ms(lambda: build_context(events), repeats)),
    ]
    with tempfile.TemporaryDirectory() as d:
        ledger = open_ledger(f"sqlite:///{Path(d) / 'ctx.db'}")
        try:
            ledger.append_batch("bench-ctx", conversation_events(n_events))
            rows.append(("SQLite read only", *sample_ms(lambda: ledger.read("bench-ctx"), repeats)))
            rows.append(
                (
                    "SQLite read + agent context (warm)",
                    *sample_ms(lambda: build_context(ledger.read("bench-ctx")), repeats),
                )
            )
        finally:
            ledger.close()
    print(f"\n== agent context, {n_events}-event conversation ({repeats} runs; goal ≤ 10 ms) ==")
    floor_cpu = rows[0][3]
    by_name = {name: median for name, median, _, _ in rows}
    emit(
        Figure(
            f"agent context fold, {n_events} events in memory (warm)",
            by_name["agent context, warm (a rebuild)"],
            "ms",
            baseline=by_name["bare dispatch loop (floor)"],
            baseline_name="bare dispatch loop",
            goal_max=5.0,
        )
    )
    print(f"{'':36} {'median ms':>10} {'p90 ms':>8} {'CPU ms':>8} {'× floor':>8}")
    for name, median, p90, cpu in rows:
        print(f"{name:36} {median:10.2f} {p90:8.2f} {cpu:8.2f} {cpu / floor_cpu:8.1f}")
    ctx = build_context(events)
    print(
        f"context: topic={ctx.topic.phrase if ctx.topic else None!r}, "
        f"{len(ctx.entities)} entities, {len(ctx.recent_turns)} recent turns, "
        f"{len(ctx.model_dump_json())} bytes of JSON"
    )


def populate(ledger: Ledger, conversations: int) -> None:
    for i in range(conversations):
        cid = f"m-{i}"

        def ev(type_: str, leg: str | None = None, **data: Any) -> NewEvent:
            return NewEvent(type_, data, leg_id=leg)

        batch = [
            ev("ConversationStarted", channel="chat"),
            ev("LegOpened", "c", channel="chat"),
            ev("MessagePosted", "c", role="visitor", text="about my claim"),
            ev("IdentityVerified", "c", method="otp", level=2, subject="s"),
            ev("MessagePosted", "c", role="agent", text="let me see"),
            ev("HandoffOffered", "c", handoff_id="h"),
        ]
        if i % 3:
            batch += [
                ev("HandoffAccepted", "c", handoff_id="h"),
                ev("LegOpened", "v", channel="webrtc"),
                ev("IdentityVerified", "v", method="handoff_token", level=2, subject="s"),
                ev("HandoffCompleted", "v", handoff_id="h", leg_id="v", first_utterance="Hi"),
                ev("UtteranceTranscribed", "v", role="visitor", text="yes", start_ms=0,
                   end_ms=500, confidence=0.9),
            ]  # fmt: skip
            if i % 10 == 1:  # a few voice legs ask the visitor to prove who they are again
                batch.append(ev("IdentityVerified", "v", method="kba", level=2, subject="s"))
        else:
            batch.append(ev("HandoffDeclined", "c", handoff_id="h"))
        batch += [ev("ConversationResolved"), ev("CSATRecorded", score=1 + i % 5)]
        ledger.append_batch(cid, batch)


def read_log(ledger: Ledger) -> list[RecordedEvent]:
    out: list[RecordedEvent] = []
    while batch := ledger.read_all(after=out[-1].sequence if out else 0, limit=500):
        out.extend(batch)
    return out


def bench_rebuild(backend: str, url: str, conversations: int) -> None:
    ledger = open_ledger(url)
    try:
        t0 = time.perf_counter()
        populate(ledger, conversations)
        fill_s = time.perf_counter() - t0
        n = ledger.max_sequence()
        t0 = time.perf_counter()
        events = read_log(ledger)
        read_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        expected = build_metrics(events)
        fold_s = time.perf_counter() - t0
        view = open_metrics_view(url)
        try:
            view.reset()
            t0 = time.perf_counter()
            applied = runner_for(ledger, view).catch_up()
            rebuild_s = time.perf_counter() - t0
            assert applied == n, (applied, n)
            assert view.metrics() == expected, "read model differs from the in-memory fold"
        finally:
            view.close()
    finally:
        ledger.close()
    print(f"\n== metrics rebuild, {backend}: {conversations} conversations, {n} events ==")
    print(f"(populating took {fill_s:.1f} s)")
    rows = [
        ("read global log only (baseline)", n / read_s),
        ("in-memory fold (build_metrics)", n / fold_s),
        ("rebuild read model (read+apply+commit)", n / rebuild_s),
    ]
    for name, rate in rows:
        print(f"{name:42} {rate:12,.0f} events/s  {rate / rows[0][1]:6.2f} × read")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="fewer runs and conversations")
    args = parser.parse_args()
    repeats = 30 if args.quick else 100
    conversations = 500 if args.quick else 3000
    bench_context(1000, repeats)
    if args.backend in ("sqlite", "all"):
        with tempfile.TemporaryDirectory() as d:
            bench_rebuild("sqlite", f"sqlite:///{Path(d) / 'metrics.db'}", conversations)
    if args.backend in ("postgres", "all"):
        with postgres_server() as make_url:
            bench_rebuild("postgres", make_url("projections"), conversations)


if __name__ == "__main__":
    main()
