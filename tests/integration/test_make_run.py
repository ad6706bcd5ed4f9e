"""`make run` stops cleanly: one `kill` (even `kill -9`) of make, or Ctrl-C (SIGINT to its
process group), and no server is left behind. Runs the real Makefile target with this
interpreter's venv (`-o` keeps make from reinstalling it)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness.api_server import TEST_SECRET, free_port

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _default_signals() -> None:
    """As in a terminal: a job started in the background by our runner ignores SIGINT, and
    make would inherit that."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


@pytest.mark.parametrize(
    ("sig", "group"),
    [
        (signal.SIGTERM, False),  # `kill PID`: make passes SIGTERM on to its children
        (signal.SIGKILL, False),  # `kill -9 PID`: make cannot pass anything on
        (signal.SIGINT, True),  # Ctrl-C: the whole foreground group
    ],
)
def test_make_run_stops_on_one_signal(tmp_path: Path, sig: signal.Signals, group: bool) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "THREADLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
        "THREADLINE_PORT": str(port),
        "THREADLINE_SECRET": TEST_SECRET,
    }
    make = subprocess.Popen(
        ["make", "-s", "-C", str(ROOT), "run", f"VENV={VENV}", "-o", f"{VENV}/.installed"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, as a terminal would give it
        preexec_fn=_default_signals,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert make.poll() is None, "make run exited before serving"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.2)
        servers = _children(make.pid)
        assert servers, "no server under make"
        if group:
            os.killpg(make.pid, sig)
        else:
            os.kill(make.pid, sig)
        make.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in servers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in servers), "the server outlived make"
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    finally:
        # Whatever is left of the group (a failing run's orphan included) goes.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(make.pid, signal.SIGKILL)
        make.wait()
