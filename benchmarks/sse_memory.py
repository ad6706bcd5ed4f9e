"""Memory of `threadline serve` holding open SSE streams: `python -m benchmarks.sse_memory`.

A real server process (SQLite); `--streams` clients each open
`GET /v1/conversations/{id}/stream` over a raw asyncio socket and keep it open. Reports the
server's resident set size (VmRSS) once every stream has its 200 response headers, against
the same server's RSS before any stream opened (the baseline, same run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import Figure, emit  # noqa: E402
from harness.api_server import ApiServer, create_key  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def open_streams(
    port: int, key: str, cids: list[str], n: int
) -> tuple[list[asyncio.StreamWriter], list[str]]:
    writers: list[asyncio.StreamWriter] = []
    errors: list[str] = []
    gate = asyncio.Semaphore(64)  # connect in waves: the listen backlog is finite

    async def one(i: int) -> None:
        async with gate:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(
                    f"GET /v1/conversations/{cids[i % len(cids)]}/stream HTTP/1.1\r\n"
                    f"Host: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
                    "Accept: text/event-stream\r\n\r\n".encode()
                )
                status = await asyncio.wait_for(reader.readline(), 60)
                while (await asyncio.wait_for(reader.readline(), 60)) not in (b"\r\n", b""):
                    pass
                if b" 200 " not in status:
                    errors.append(status.decode("latin-1").strip())
                    writer.close()
                    return
                writers.append(writer)
            except (OSError, TimeoutError) as exc:
                errors.append(repr(exc))

    await asyncio.gather(*(one(i) for i in range(n)))
    return writers, errors


def run(streams: int, conversations: int, workdir: Path) -> dict[str, Any]:
    url = f"sqlite:///{workdir / 'bench.db'}"
    key = create_key(url, name="bench")
    server = ApiServer(url, workdir / "server.log", access_log=False).start()
    assert server.process is not None
    try:
        with server.client(key) as c:
            cids = [
                c.post("/v1/conversations", json={}).json()["conversation_id"]
                for _ in range(conversations)
            ]
            # One stream opened and closed first, so the baseline includes the code paths
            # (imports, first-request caches) rather than charging them to the streams.
            with c.stream("GET", f"/v1/conversations/{cids[0]}/stream") as r:
                r.raise_for_status()
        time.sleep(0.5)
        idle = rss_mb(server.process.pid)

        pid = server.process.pid

        async def hold() -> tuple[float, int, list[str]]:
            writers, errors = await open_streams(server.port, key, cids, streams)
            await asyncio.sleep(1.0)  # let the server settle its per-stream state
            held = rss_mb(pid)
            for w in writers:
                w.close()
            return held, len(writers), errors

        held, opened, errors = asyncio.run(hold())
    finally:
        server.stop()
    return {
        "idle_rss_mb": round(idle, 1),
        "rss_mb": round(held, 1),
        "streams_open": opened,
        "errors": len(errors),
        "error_sample": errors[:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--conversations", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.streams, args.conversations, Path(tmp))
    print(json.dumps({"streams": args.streams, **result}, indent=2))
    emit(
        Figure(
            f"RSS of threadline serve, {args.streams} open SSE streams, sqlite",
            float(result["rss_mb"]),
            "MB",
            baseline=float(result["idle_rss_mb"]),
            baseline_name="same server, no stream open",
            goal_max=300,
        )
    )
    if result["errors"] or result["streams_open"] != args.streams:
        emit(
            Figure(
                "SSE streams that failed to open", float(result["errors"]), "streams", goal_max=0
            )
        )


if __name__ == "__main__":
    main()
