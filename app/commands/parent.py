"""Stop with the parent process: `make run` is killed, the server it started goes too.

A signal sent to `make` alone (one `kill`) is not passed on to its children, so without this
the server outlives `make` as an orphan. Linux delivers SIGTERM to us when our parent exits
(prctl PR_SET_PDEATHSIG); uvicorn treats that as a graceful shutdown. Elsewhere it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def exit_with_parent() -> bool:
    """Arranges SIGTERM on the parent's exit; False where the platform cannot."""
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:  # the parent exited before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)
    return True
