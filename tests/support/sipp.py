"""Runs Debian's `sipp` as a real SIP far end on loopback (scenarios: tests/integration/sipp)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tests.support.uvicorn_thread import free_port

SCENARIOS = Path(__file__).resolve().parents[1] / "integration" / "sipp"


@dataclass
class Sipp:
    process: subprocess.Popen[bytes]
    port: int
    workdir: Path
    scenario: str
    log: IO[bytes]

    def wait(self, timeout_s: float) -> int:
        return self.process.wait(timeout=timeout_s)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.workdir.glob("*_logs.log"))

    def errors(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.workdir.glob("*_errors.log"))


def sipp_available() -> bool:
    return shutil.which("sipp") is not None


def start_uas(
    scenario: str,
    workdir: Path,
    *,
    hold_ms: int,
    target: str | None = None,
    caller: str | None = None,
) -> Sipp:
    """One call on 127.0.0.1 that lasts `hold_ms`: as UAS (answers), or as UAC calling
    `target` (host:port) when given. `caller` is sipp's `-s`, which the caller scenarios put
    in the From user part: the number the call comes from (the ANI Threadline matches)."""
    import socket

    port = free_port(socket.SOCK_DGRAM)
    media = free_port(socket.SOCK_DGRAM)
    control = free_port(socket.SOCK_DGRAM)
    shutil.copy(SCENARIOS / scenario, workdir / scenario)
    args = [
        "sipp",
        "-sf",
        scenario,
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        "-mi",
        "127.0.0.1",
        "-mp",
        str(media),
        "-cp",
        str(control),
        "-m",
        "1",
        "-d",
        str(hold_ms),
        "-timeout",
        "60s",
        "-trace_logs",
        "-trace_err",
        "-nostdin",
        "-nd",
        *(["-s", caller] if caller else []),
        *([target] if target else []),
    ]
    log = (workdir / "sipp.out").open("wb")
    process = subprocess.Popen(args, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    return Sipp(process, port, workdir, scenario, log)
