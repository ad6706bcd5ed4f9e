"""Replay and point-in-time benchmark (issue 19): `python -m benchmarks.replay
[--sizes 10000,100000,1000000] [--http] [--repeats N]`.

A realistic 1,000-event conversation (benchmarks.projections.conversation_events: turns,
identity, tools, signals, a handoff to voice) is spread evenly through SQLite stores of each
size (filler conversations bulk-loaded between its chunks). Measured in the same run, the
stores alternated so that load drift hits all alike (median ms, warm):

- full replay: `build_context(ledger.read(c))`, every event decoded and folded (baseline);
- snapshot, head unchanged: `ContextSnapshots.context(c)` after an earlier read;
- snapshot + 10 new events: a read after the conversation grew by 10 events since the
  snapshot (point in time 10 past a checkpoint: the same work);
- point in time at a random position (folds from the nearest checkpoint below it).

Every snapshot answer is checked equal to the full fold first. `--http`: a real
`threadline serve` on the smallest store answers `GET /v1/conversations/{c}/context?upto=q`
for random q, with snapshots on and (baseline, same run) off: wall ms per request, and the
server's CPU per request (which includes its background jobs). Not part of `make test`.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.ledger import bulk_insert, message, postgres_server, started  # noqa: E402
from benchmarks.projections import conversation_events  # noqa: E402
from benchmarks.report import Figure, emit  # noqa: E402
from threadline.ledger.envelope import NewEvent  # noqa: E402
from threadline.ledger.records import draft  # noqa: E402
from threadline.ledger.settings import LedgerSettings  # noqa: E402
from threadline.ledger.store import Ledger, open_ledger  # noqa: E402
from threadline.projections.context import build_context  # noqa: E402
from threadline.projections.snapshots import ContextSnapshots  # noqa: E402

TARGET = "target"
EVENTS = 1000


def target_events() -> list[NewEvent]:
    events = conversation_events(EVENTS)
    first = events[0]
    # The API key's tenant, so that the HTTP part may read it.
    return [NewEvent(first.type, {**dict(first.data), "tenant": "default"}), *events[1:]]


def fill(ledger: Ledger, total: int) -> float:
    """`total` events; the target's 1,000 in 100 chunks, each after an equal share of filler."""
    t0 = time.perf_counter()
    events = target_events()
    chunks = 100
    per_chunk = EVENTS // chunks
    segment = max(0, (total - EVENTS) // chunks)
    size = max(1, min(500, segment))
    template = [draft("template", started())] + [
        draft("template", message(i)) for i in range(size - 1)
    ]
    for c in range(chunks):
        left = segment
        while left > 0:
            bulk_insert(ledger, f"fill-{uuid.uuid4().hex}", template[: min(size, left)])
            left -= size
        ledger.append_batch(TARGET, events[c * per_chunk : (c + 1) * per_chunk])
        if c % 20 == 19:
            print(f"    ... {(c + 1) * (segment + per_chunk):,} events", flush=True)
    return time.perf_counter() - t0


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall ms, CPU ms of this process): CPU time is what other load moves least."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000


def variants(
    ledger: Ledger, s: ContextSnapshots, grown: int, point: int
) -> list[tuple[str, Callable[[], Any]]]:
    return [
        ("full replay (read + fold from 1)", lambda: build_context(ledger.read(TARGET))),
        ("read only", lambda: ledger.read(TARGET)),
        ("snapshot, head unchanged", lambda: s.context(TARGET)),
        ("snapshot + 10 new events", lambda: s.context(TARGET, upto=grown)),
        ("point in time, random position", lambda: s.context(TARGET, upto=point)),
    ]


def run(
    sizes: list[int],
    repeats: int,
    make_url: Callable[[int], str],
    settings: LedgerSettings | None = None,
) -> dict[int, dict[str, tuple[float, float]]]:
    ledgers: dict[int, Ledger] = {}
    snaps: dict[int, ContextSnapshots] = {}
    for total in sizes:
        ledger = open_ledger(make_url(total), settings=settings, group_commit=False)
        print(f"  filling {total:,} events ...", flush=True)
        print(f"  filled in {fill(ledger, total):.0f} s", flush=True)
        ledgers[total] = ledger
        snaps[total] = ContextSnapshots(ledger)
    rnd = random.Random(19)
    points = [rnd.randint(1, EVENTS) for _ in range(repeats + 2)]
    grown = 768 + 10  # 10 events past the checkpoint at 768 (interval 128)
    for total, ledger in ledgers.items():  # honesty first: every variant equals the full fold
        s = snaps[total]
        assert s.context(TARGET) == build_context(ledger.read(TARGET))
        assert 768 in s.positions(TARGET), s.positions(TARGET)
        for q in [grown, *points[:10]]:
            assert s.context(TARGET, upto=q) == build_context(ledger.read(TARGET, upto=q))
    samples: dict[int, dict[str, list[tuple[float, float]]]] = {t: {} for t in sizes}
    for i in range(repeats + 2):
        for total, ledger in ledgers.items():
            s = snaps[total]
            row = samples[total]
            for name, fn in variants(ledger, s, grown, points[i]):
                row.setdefault(name, []).append(timed(fn))
    for ledger in ledgers.values():
        ledger.close()
    return {
        total: {
            name: (statistics.median(w for w, _ in v[2:]), statistics.median(c for _, c in v[2:]))
            for name, v in row.items()
        }
        for total, row in samples.items()
    }


def server_cpu_s(server: Any) -> float:
    assert server.process is not None
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(server: Any, limit_s: float = 120.0) -> None:
    """Waits until the server is idle: at start it signs its first checkpoint, an audit of
    the whole log (THREADLINE_CHECKPOINT_INTERVAL_S, then every 5 min), which would compete
    with the requests measured for the GIL and the cores."""
    deadline = time.monotonic() + limit_s
    before = server_cpu_s(server)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = server_cpu_s(server)
        if now - before < 0.005:
            return
        before = now


def http_point_in_time(db: Path, repeats: int, workdir: Path) -> dict[str, tuple[float, float]]:
    """{snapshots on/off: (median wall ms of GET …/context?upto=q over real HTTP, server CPU
    ms per request)}: the same server and store, with and without context snapshots."""
    from harness.api_server import ApiServer, create_key

    url = f"sqlite:///{db}"
    key = create_key(url, name="bench")
    rnd = random.Random(15)
    points = [rnd.randint(1, EVENTS) for _ in range(repeats)]
    out = {}
    for label, keep in (("on", "1024"), ("off", "0")):
        http_ms: list[float] = []
        with (
            ApiServer(
                url, workdir / "server.log", access_log=False,
                THREADLINE_PROJECTIONS_CONTEXT_SNAPSHOTS=keep,
            ) as server,
            server.client(key) as c,
        ):  # fmt: skip
            settle(server)
            for _ in range(3):  # warm: connection, caches, (on) the snapshots of a head read
                assert c.get(f"/v1/conversations/{TARGET}/context").status_code == 200
            cpu = server_cpu_s(server)
            for q in points:
                t0 = time.perf_counter()
                r = c.get(f"/v1/conversations/{TARGET}/context", params={"upto": q})
                http_ms.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text
            cpu_ms = (server_cpu_s(server) - cpu) * 1000 / len(points)
        out[label] = (statistics.median(http_ms), cpu_ms)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="stored events per store")
    parser.add_argument("--repeats", type=int, default=41)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--http", action="store_true", help="sqlite: also point in time over HTTP")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    print(f"load average before: {os.getloadavg()}")
    backend = args.backend
    with tempfile.TemporaryDirectory(prefix="threadline-replay-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        if backend == "postgres":
            make = stack.enter_context(postgres_server())
            # Personal fields encrypted as on SQLite (which finds its `.db.key` file): a
            # server URL needs the master key given.
            key = LedgerSettings(master_key=SecretStr(secrets.token_hex(32)))
            medians = run(sizes, args.repeats, lambda total: make(f"replay{total}"), key)
        else:
            medians = run(
                sizes, args.repeats, lambda total: f"sqlite:///{workdir}/replay{total}.db"
            )
        names = list(medians[sizes[0]])
        for k, what in ((0, "wall"), (1, "CPU")):
            print(f"\n== replay of a {EVENTS}-event conversation, {backend} (median {what} ms) ==")
            print(f"{'':36}" + "".join(f"{t:>12,}" for t in sizes))
            for name in names:
                print(f"{name:36}" + "".join(f"{medians[t][name][k]:12.2f}" for t in sizes))
        small, large = sizes[0], sizes[-1]
        # CPU time for the figures: on this shared machine the wall time of the 30-40 ms full
        # replay swings 3x with other load, the CPU time barely (both are printed above).
        full = medians[large]["full replay (read + fold from 1)"][1]
        for name in ("snapshot + 10 new events", "point in time, random position"):
            emit(
                Figure(
                    "replay 1,000 events → agent context (CPU), "
                    f"{name}, {large:,} stored, {backend}",
                    medians[large][name][1],
                    "ms",
                    baseline=full,
                    baseline_name="full replay from position 1, same store",
                    goal_max=5.0,
                )
            )
        for name in names:
            if name == "read only":
                continue
            emit(
                Figure(
                    f"flatness (CPU) of {name}, {large:,} vs {small:,} stored, {backend}",
                    medians[large][name][1],
                    "ms",
                    baseline=medians[small][name][1],
                    baseline_name=f"same, {small:,} stored",
                    ratio_max=1.2,
                )
            )
        if args.http and backend == "sqlite":
            got = http_point_in_time(workdir / f"replay{small}.db", 41, workdir)
            for label, (wall, cpu) in got.items():
                print(f"\nHTTP point-in-time context, snapshots {label}: {wall:.2f} ms, "
                      f"server CPU {cpu:.2f} ms per request")  # fmt: skip
            for what, k, goal in (("", 0, 15.0), (", server CPU per request", 1, None)):
                emit(
                    Figure(
                        f"point-in-time context over HTTP{what}, 1,000-event conversation, sqlite",
                        got["on"][k],
                        "ms",
                        baseline=got["off"][k],
                        baseline_name="same server, snapshots off",
                        goal_max=goal,
                    )
                )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
