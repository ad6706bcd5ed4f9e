"""Clean up servers even when the test process dies without running its finalizers.

A pytest killed by SIGTERM/SIGKILL (a CI timeout, a developer's Ctrl-\\) skips fixture
teardown, and a daemonised PostgreSQL or a broker in its own session would outlive it.
`Reaper` starts a tiny watcher process holding the read end of a pipe: when this process
exits, however it exits, the pipe closes and the watcher runs the cleanup command. A normal
teardown calls `disarm()` so the command never runs twice (a reused PID must not be killed).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys

_WATCHER = """
import subprocess, sys
if sys.stdin.readline() != "disarm\\n":
    subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
"""


class Reaper:
    def __init__(self, argv: list[str]) -> None:
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-c", _WATCHER, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a signal to our process group must not kill the watcher
        )

    def disarm(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.stdin is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.write(b"disarm\n")
            proc.stdin.close()
        proc.wait(10)

    def fire(self) -> None:
        """Run the cleanup now (and wait for it)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.stdin is None:
            return
        proc.stdin.close()
        proc.wait(120)
