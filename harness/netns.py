"""Loopback-only network namespaces for media tests (WebRTC, SIP): inside `unshare -n` the
only interface is `lo`, so no packet can go anywhere but 127.0.0.1/::1."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

FLAG = "TL_TEST_IN_NETNS"


def inside() -> bool:
    return os.environ.get(FLAG) == "1"


@functools.cache
def available() -> bool:
    """Root with util-linux `unshare` and iproute2 `ip` (CI runs as root)."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    probe = subprocess.run(
        ["unshare", "-n", "--", "ip", "link", "set", "lo", "up"], capture_output=True, timeout=10
    )
    return probe.returncode == 0


def command(argv: list[str]) -> list[str]:
    """`argv` run inside a fresh network namespace whose loopback is up."""
    return ["unshare", "-n", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]


def env() -> dict[str, str]:
    return {**os.environ, FLAG: "1"}
