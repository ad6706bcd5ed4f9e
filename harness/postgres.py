"""A throwaway PostgreSQL 15 cluster for tests: real server, loopback only, removed at exit.

Fixtures:
- `postgres_cluster` (session): the running `PostgresCluster`.
- `postgres_url` (session): URL of one database created at startup.
- `fresh_postgres_url` (function): URL of a new, empty database per test (dropped afterwards).

The binaries come from Debian (`scripts/sysdeps.sh` installs them). If they are missing the
fixtures fail loudly: a skipped database test would hide exactly the bugs they exist for.

`PostgresCluster` is usable outside pytest too (benchmarks): `with PostgresCluster() as pg:`.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from types import TracebackType

from harness.reaper import Reaper

PG_BIN = Path(os.environ.get("TL_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
_USER = "threadline"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PostgresCluster:
    """initdb + pg_ctl in a temp dir. As root the server runs as the `postgres` system user
    (initdb refuses root); otherwise as the current user."""

    def __init__(self, bin_dir: Path = PG_BIN) -> None:
        self.bin_dir = bin_dir
        self.password = secrets.token_hex(16)
        self.port = 0
        self.base: Path | None = None
        self._reaper: Reaper | None = None

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> PostgresCluster:
        for tool in ("initdb", "pg_ctl", "postgres", "psql"):
            if not os.access(self.bin_dir / tool, os.X_OK):
                raise RuntimeError(
                    f"PostgreSQL 15 binary {self.bin_dir / tool} is missing; "
                    "run `bash scripts/sysdeps.sh` (installs Debian postgresql-15)"
                )
        self.base = Path(tempfile.mkdtemp(prefix="threadline-pg-"))
        pwfile = self.base / "pw"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.base, user="postgres", group="postgres")
            shutil.chown(pwfile, user="postgres", group="postgres")
        pwfile.chmod(0o600)
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            _USER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        )
        pwfile.unlink()
        # Stops the server and removes the directory even if this process is killed.
        pg_ctl = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w"]
        if os.geteuid() == 0:
            pg_ctl = ["runuser", "-u", "postgres", "--", *pg_ctl]
        script = f"{shlex.join(pg_ctl)} stop; rm -rf {shlex.quote(str(self.base))}"
        self._reaper = Reaper(["sh", "-c", script])
        atexit.register(self.stop)
        # A port picked by bind(0) can be taken by someone else before postgres binds it.
        last_error = ""
        for _ in range(5):
            self.port = free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} "
                f"-c unix_socket_directories={self.base} -c max_connections=200"
            )
            result = self._run(
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-o",
                options,
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                "60",
                "start",
                check=False,
            )
            if result.returncode == 0:
                return self
            last_error = result.stdout + result.stderr + self._log_tail()
        self.stop()
        raise RuntimeError(f"PostgreSQL did not start:\n{last_error}")

    def restart(self) -> None:
        """An immediate (crash-like) stop and a start on the same port: what a database
        failover or an OOM-killed server looks like to its clients."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} "
            f"-c unix_socket_directories={self.base} -c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-m",
            "immediate",
            "-o",
            options,
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "60",
            "restart",
        )

    def stop(self) -> None:
        if self.base is None:
            return
        if self._reaper is not None:
            self._reaper.fire()
            self._reaper = None
        shutil.rmtree(self.base, ignore_errors=True)
        self.base = None

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- databases --------------------------------------------------------------------------
    def url(self, database: str) -> str:
        return f"postgresql://{_USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (from template0: no copy of anything) and return its URL."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        self._sql(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self._sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _sql(self, statement: str) -> None:
        # Through psql over the unix socket as the superuser: no driver dependency here.
        result = self._run(
            "psql",
            "-h",
            str(self.base),
            "-p",
            str(self.port),
            "-U",
            _USER,
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-c",
            statement,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{statement!r} failed: {result.stderr.strip()}")

    # -- helpers ----------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        assert self.base is not None
        return self.base / "data"

    @property
    def log_file(self) -> Path:
        assert self.base is not None
        return self.base / "server.log"

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_file.read_text().splitlines()[-20:])
        except OSError:
            return ""

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / tool), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(
            cmd, capture_output=True, text=True, timeout=120, check=False, cwd=self.base
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr.strip()}")
        return result
