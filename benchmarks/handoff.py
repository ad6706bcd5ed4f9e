"""Handoff and agent benchmark: `python -m benchmarks.handoff [--turns N] [--handoffs N]`.

On a SQLite file (ledger and tool tables in one database, as `make run` uses), in one run,
with a raw `Ledger.append` of a chat message measured first as the baseline (these machines
are noisy, so the ratios are what to compare across runs):

1. Chat turn: `ChatAgent.visitor_turn` with the offline agent (visitor message, context fold,
   signals, tool call on the real tables, atomic append of the agent's events and reply).
2. Handoff: `request_handoff` (accept + token) and `redeem` (verify token, replay the
   conversation, first utterance, atomic LegOpened + IdentityVerified + HandoffCompleted),
   on conversations of a realistic length (the demo chat).
3. First utterance alone, from a built context: on the demo chat, and on a 200-event
   conversation of mixed topics (the issue's goal: p99 <= 20 ms offline).
4. The scenario corpus (tests/corpus/*.yaml): pass rate, and precision/recall of the
   voice-needed signals against each scenario's expected offer.

Prints p50/p95 in milliseconds and each as a multiple of the baseline append. Not part of
`make test`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import Figure, emit  # noqa: E402
from harness import corpus  # noqa: E402
from threadline.agent.chat import ChatAgent  # noqa: E402
from threadline.agent.factory import build_agent  # noqa: E402
from threadline.agent.sqltools import open_tool_backend  # noqa: E402
from threadline.agent.sqltools.seed import seed  # noqa: E402
from threadline.handoff.first_utterance import OfflineUtterances  # noqa: E402
from threadline.handoff.service import HandoffService  # noqa: E402
from threadline.handoff.signing import Signer  # noqa: E402
from threadline.ledger.envelope import NewEvent  # noqa: E402
from threadline.ledger.events import ConversationStarted, LegOpened, MessagePosted  # noqa: E402
from threadline.ledger.store import Ledger, open_ledger  # noqa: E402
from threadline.projections.context import build_context  # noqa: E402

CHAT = (
    "Hi, I have a question about my January claim.",
    "My date of birth is 12 March 1984 and my member number is MBR-100234.",
    "Do you need my HIPAA authorization so my husband can talk to you about the claim?",
)


def ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return statistics.median(ordered) * 1000, p95 * 1000


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def start(ledger: Ledger, cid: str) -> None:
    ledger.append_batch(
        cid,
        [
            NewEvent("ConversationStarted", ConversationStarted(channel="chat")),
            NewEvent("LegOpened", LegOpened(channel="chat"), leg_id="leg_chat"),
        ],
        expected_version=0,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--handoffs", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        ledger = open_ledger(url)
        tools = open_tool_backend(url)
        seed(tools)
        agent = build_agent(tools)
        chat = ChatAgent(ledger, agent)
        service = HandoffService(ledger, signer=Signer(b"b" * 32, "handoff"))

        start(ledger, "baseline")
        baseline = [
            timed(
                lambda: ledger.append(
                    "baseline",
                    NewEvent("MessagePosted", MessagePosted(role="visitor", text=CHAT[0])),
                )
            )
            for _ in range(args.turns)
        ]

        turns: list[float] = []
        for i in range(args.turns):
            cid = f"turns-{i // 10}"
            if i % 10 == 0:
                start(ledger, cid)
            text = CHAT[i % 2] if i % 10 < 2 else "What is the status of my January claim?"
            t0 = time.perf_counter()
            chat.visitor_turn(cid, text, leg_id="leg_chat")
            turns.append(time.perf_counter() - t0)

        requests: list[float] = []
        redeems: list[float] = []
        firsts: list[float] = []
        generator = OfflineUtterances()
        for _ in range(args.handoffs):
            cid = f"handoff-{uuid.uuid4().hex[:8]}"
            start(ledger, cid)
            for line in CHAT:
                chat.visitor_turn(cid, line, leg_id="leg_chat")
            t0 = time.perf_counter()
            ticket = service.request_handoff(cid)
            t1 = time.perf_counter()
            service.redeem(ticket.token, "bench")
            t2 = time.perf_counter()
            requests.append(t1 - t0)
            redeems.append(t2 - t1)
            ctx = build_context(ledger.read(cid))
            t0 = time.perf_counter()
            generator.generate(ctx, level=2, reason=None)
            firsts.append(time.perf_counter() - t0)
        long_firsts = long_conversation(chat, ledger, generator, args.handoffs * 2)
        results = [corpus.run(s, ledger, tools) for s in corpus.load()]
        tools.close()
        ledger.close()

    base50, base95 = ms(baseline)
    print(f"SQLite file, {args.turns} chat turns, {args.handoffs} handoffs")
    print(f"{'operation':<34}{'p50 ms':>9}{'p95 ms':>9}{'p50 / append':>14}")
    for name, samples in (
        ("baseline: Ledger.append (1 event)", baseline),
        ("chat turn (offline agent)", turns),
        ("request_handoff (accept + token)", requests),
        ("redeem (token → voice leg)", redeems),
        ("first utterance (offline)", firsts),
    ):
        p50, p95 = ms(samples)
        print(f"{name:<34}{p50:>9.2f}{p95:>9.2f}{p50 / base50:>13.1f}x")
    print(f"(baseline p95 {base95:.2f} ms)")
    base = "Ledger.append p50"
    emit(Figure("chat turn p50, offline agent", ms(turns)[0], "ms", base50, base, goal_max=15))
    first50 = statistics.median(firsts) * 1000
    first99 = sorted(firsts)[int(0.99 * (len(firsts) - 1))] * 1000
    emit(Figure("first utterance p50, offline", first50, "ms", base50, base, goal_max=20))
    emit(Figure("first utterance p99, offline", first99, "ms", base50, base, goal_max=20))
    long50 = statistics.median(long_firsts) * 1000
    long99 = sorted(long_firsts)[int(0.99 * (len(long_firsts) - 1))] * 1000
    name = "first utterance, 200-event chat"
    emit(Figure(f"{name} p50", long50, "ms", base50, base, goal_max=20))
    emit(Figure(f"{name} p99", long99, "ms", base50, base, goal_max=20))
    passed = sum(r.passed for r in results) / len(results)
    precision, recall = corpus.precision_recall(results)
    print(f"corpus: {sum(r.passed for r in results)}/{len(results)} passed")
    for r in results:
        if not r.passed:
            print(f"  {r.scenario.id}: {'; '.join(r.failures)}")
    emit(Figure(f"corpus pass rate ({len(results)} chats)", passed * 100, "%", goal_min=90))
    emit(Figure("voice-needed signal precision (corpus)", precision * 100, "%", goal_min=90))
    emit(Figure("voice-needed signal recall (corpus)", recall * 100, "%", goal_min=90))


def long_conversation(
    chat: ChatAgent, ledger: Ledger, generator: OfflineUtterances, samples: int
) -> list[float]:
    """First-utterance time on one conversation of at least 200 events (visitor turns from
    the corpus, several topics, each answered by the agent with its signals and offers)."""
    cid = f"long-{uuid.uuid4().hex[:8]}"
    start(ledger, cid)
    lines = [t for s in corpus.load() for t in s.turns]
    i = 0
    while ledger.read(cid)[-1].position < 200:
        chat.visitor_turn(cid, lines[i % len(lines)], leg_id="leg_chat")
        i += 1
    ctx = build_context(ledger.read(cid))
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        generator.generate(ctx, level=0, reason=None)
        out.append(time.perf_counter() - t0)
    return out


if __name__ == "__main__":
    main()
