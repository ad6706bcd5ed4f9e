"""`threadline keys ...` and `threadline serve` from the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.api_server import ROOT, server_env
from threadline.access.keys import KeyVerifier, open_key_store


def threadline(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "threadline.app.cli", *args],
        cwd=ROOT,
        env=server_env(url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_keys_create_prints_the_key_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    created = threadline(url, "keys", "create", "--name", "sms-adapter", "--tenant", "acme")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("tlk_")
    assert key not in created.stderr
    secret = key.split("_", 2)[2]
    assert secret.encode() not in (tmp_path / "keys.db").read_bytes()
    store = open_key_store(url)
    try:
        assert KeyVerifier(store).verify(key).tenant == "acme"
    finally:
        store.close()
    listed = threadline(url, "keys", "list")
    assert "sms-adapter" in listed.stdout
    assert secret not in listed.stdout
    key_id = key.split("_")[1]
    assert threadline(url, "keys", "revoke", key_id).returncode == 0


def test_bad_input_is_a_one_line_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    bad = threadline(url, "keys", "create", "--name", "no/slashes")
    assert bad.returncode != 0
    assert bad.stderr.strip().count("\n") == 0
    assert bad.stderr.startswith("error:")
    missing = threadline(url, "keys", "revoke", "0000000000000000")
    assert missing.returncode != 0
    assert missing.stderr.startswith("error:")
    unusable = threadline("mysql://nowhere", "keys", "create", "--name", "x")
    assert unusable.returncode != 0
    assert unusable.stderr.startswith("error:")


def test_serve_with_an_unusable_database_fails_in_one_line(tmp_path: Path) -> None:
    done = threadline(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}", "serve", "--port", "0")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("error: cannot start")
