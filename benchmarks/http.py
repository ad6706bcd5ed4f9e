"""HTTP append throughput and latency: `python -m benchmarks.http [--backend sqlite|postgres]`.

A real server (`threadline serve`, one uvicorn process) on loopback; the load comes from a
separate process speaking raw HTTP/1.1 keep-alive over asyncio streams (cheap per request, so
the client does not hide the server's cost), `--connections` requests in flight at once, each
a new event for one of `--conversations` conversations. Reports appends/s, p50/p99 latency and
errors, against a baseline measured in the same run: `Ledger.append` called directly in-process
on the same backend (so the ratio shows what the HTTP layer costs on this machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import Figure, emit  # noqa: E402
from harness.api_server import ApiServer, create_key  # noqa: E402
from threadline.ledger.envelope import NewEvent  # noqa: E402
from threadline.ledger.events import ConversationStarted, MessagePosted  # noqa: E402
from threadline.ledger.store import open_ledger  # noqa: E402


def baseline(url: str, seconds: float) -> float:
    """Direct in-process appends/s on the same backend (one thread, same event shape)."""
    ledger = open_ledger(url)
    try:
        cids = [uuid.uuid4().hex for _ in range(16)]
        for cid in cids:
            ledger.append(cid, NewEvent("ConversationStarted", ConversationStarted(channel="chat")))
        n = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            ledger.append(
                cids[n % len(cids)],
                NewEvent("MessagePosted", MessagePosted(role="visitor", text=f"baseline {n}")),
            )
            n += 1
        return n / (time.perf_counter() - start)
    finally:
        ledger.close()


async def _connection(
    host: str,
    port: int,
    key: str,
    cids: list[str],
    offset: int,
    deadline: float,
    latencies: list[float],
    errors: list[str],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    n = offset
    try:
        while time.perf_counter() < deadline:
            cid = cids[n % len(cids)]
            n += 1
            body = json.dumps(
                {
                    "event_id": str(uuid.uuid4()),
                    "type": "MessagePosted",
                    "data": {"role": "visitor", "text": f"load {n}"},
                }
            ).encode()
            request = (
                f"POST /v1/conversations/{cid}/events HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            sent = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - sent)
            status = int(status_line.split()[1]) if status_line else 0
            if status != 201:
                errors.append(str(status))
    finally:
        writer.close()


def load(port: int, key: str, cids: list[str], seconds: float, connections: int, out: Any) -> None:
    """Runs in its own process."""

    async def main() -> tuple[list[float], list[str], float]:
        latencies: list[float] = []
        errors: list[str] = []
        start = time.perf_counter()
        deadline = start + seconds
        results = await asyncio.gather(
            *(
                _connection("127.0.0.1", port, key, cids, i, deadline, latencies, errors)
                for i in range(connections)
            ),
            return_exceptions=True,
        )
        errors += [repr(r) for r in results if isinstance(r, BaseException)]
        return latencies, errors, time.perf_counter() - start

    latencies, errors, elapsed = asyncio.run(main())
    out.put((latencies, errors, elapsed))


def server_cpu_s(server: Any) -> float:
    """User+system CPU seconds of the server process (this process for the in-process one)."""
    if isinstance(server, InProcessServer):
        import resource

        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    assert server.process is not None
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


class InProcessServer:
    """The memory:// backend lives in one process, so the server runs in a thread here (the
    load still comes from another process). Measures the HTTP layer without storage cost."""

    def __init__(self) -> None:
        import threading

        import uvicorn

        from harness.api_server import free_port
        from threadline.access.keys import MemoryKeyStore, new_key
        from threadline.access.tokens import VisitorTokens
        from threadline.app.bootstrap import Services
        from threadline.channels.http.app import create_app
        from threadline.channels.settings import ChannelSettings

        keys = MemoryKeyStore()
        self.key, record = new_key("bench", "default")
        keys.add(record)
        services = Services(
            settings=ChannelSettings(),
            ledger=open_ledger("memory://"),
            keys=keys,
            tokens=VisitorTokens(os.urandom(32), 3600),
        )
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(services), port=self.port, access_log=False, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)

    def client(self, token: str) -> Any:
        import httpx

        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {token}"})

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def run(
    url: str, seconds: float, connections: int, conversations: int, workdir: Path
) -> dict[str, Any]:
    server: ApiServer | InProcessServer
    if url == "memory://":
        server = InProcessServer()
        key = server.key
    else:
        key = create_key(url, name="bench")
        server = ApiServer(url, workdir / "server.log", access_log=False).start()
    try:
        with server.client(key) as c:
            cids = [
                c.post("/v1/conversations", json={}).json()["conversation_id"]
                for _ in range(conversations)
            ]
        # Warm up (connection setup, caches), then measure.
        ctx = multiprocessing.get_context("spawn")
        for duration in (1.0, seconds):
            queue = ctx.Queue()
            proc = ctx.Process(
                target=load, args=(server.port, key, cids, duration, connections, queue)
            )
            cpu_before = server_cpu_s(server)
            proc.start()
            latencies, errors, elapsed = queue.get(timeout=duration + 60)
            proc.join()
            cpu_used = server_cpu_s(server) - cpu_before
    finally:
        server.stop()
    raw = baseline(url, min(seconds, 3.0))
    rate = len(latencies) / elapsed
    return {
        # CPU the server spent per append: unlike appends/s, barely moved by other load on
        # a shared machine.
        "server_cpu_ms_per_append": round(cpu_used / max(1, len(latencies)) * 1000, 3),
        "appends": len(latencies),
        "appends_per_s": round(rate),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "errors": len(errors),
        "error_sample": errors[:3],
        "baseline_direct_appends_per_s": round(raw),
        "http_vs_direct": round(rate / raw, 3) if raw else None,
        "connections": connections,
        "cores": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "memory"], default="sqlite")
    parser.add_argument("--url", help="database URL (default: a fresh SQLite file / cluster)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--conversations", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.backend == "memory":
            result = run("memory://", args.seconds, args.connections, args.conversations, workdir)
        elif args.url:
            result = run(args.url, args.seconds, args.connections, args.conversations, workdir)
        elif args.backend == "sqlite":
            url = f"sqlite:///{workdir / 'bench.db'}"
            result = run(url, args.seconds, args.connections, args.conversations, workdir)
        else:
            from harness.postgres import PostgresCluster

            with PostgresCluster() as cluster:
                url = cluster.create_database("bench")
                result = run(url, args.seconds, args.connections, args.conversations, workdir)
    print(json.dumps({"backend": args.backend, **result}, indent=2))
    pg = args.backend == "postgres"
    direct = result["baseline_direct_appends_per_s"]
    emit(
        Figure(
            f"HTTP append, server CPU per event, {args.backend}",
            result["server_cpu_ms_per_append"],
            "ms",
            baseline=1000 / direct if direct else None,
            baseline_name="direct Ledger.append time, 1 thread",
            goal_max=1.0 if pg else 0.7,
        )
    )
    emit(
        Figure(
            f"HTTP appends/s, {args.connections} clients, {args.backend}",
            result["appends_per_s"],
            "appends/s",
            baseline=direct,
            baseline_name="direct Ledger.append, 1 thread",
            goal_min=1000 if pg else 1500,
        )
    )
    if result["errors"]:
        emit(Figure(f"HTTP append errors, {args.backend}", result["errors"], "errors", goal_max=0))


if __name__ == "__main__":
    main()
