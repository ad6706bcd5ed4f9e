"""A real Threadline HTTP server (uvicorn in a subprocess) on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
TEST_SECRET = "test-secret-0123456789abcdef-0123456789"
# The operator accounts the tests create sign in with this (test-only, not a secret).
OPERATOR_PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    env.update(
        THREADLINE_DATABASE_URL=database_url,
        THREADLINE_SECRET=TEST_SECRET,
        PYTHONPATH=str(ROOT),
        # Servers under test load the speech models on their first call, not at start-up
        # (≈3 s of CPU each); voice timing tests turn it back on.
        THREADLINE_VOICE_PRELOAD="0",
    )
    env.update(
        **extra,
    )
    return env


def create_key(
    database_url: str, name: str = "test", tenant: str = "default", scopes: tuple[str, ...] = ()
) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "threadline.app.commands.serve",
            "keys",
            "create",
            "--name",
            name,
            "--tenant",
            tenant,
            *(arg for scope in scopes for arg in ("--scope", scope)),
        ],
        cwd=ROOT,
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


class ApiServer:
    def __init__(
        self, database_url: str, log_path: Path, *, access_log: bool = True, **env: str
    ) -> None:
        self.access_log = access_log
        self.database_url = database_url
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> ApiServer:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "threadline.app.commands.serve",
                "serve",
                "--port",
                str(self.port),
                "--access-log" if self.access_log else "--no-access-log",
            ],
            cwd=ROOT,
            env=server_env(self.database_url, **self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not become healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush; what a crash looks like."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10.0, **kwargs)

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
