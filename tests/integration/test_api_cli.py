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


def _spawn(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "threadline.app.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_misspelt_variable_stops_serve_with_the_suggestion(tmp_path: Path) -> None:
    """Without the check the server would run on the default SQLite file in the cwd."""
    env = server_env(f"sqlite:///{tmp_path / 'x.db'}")
    del env["THREADLINE_DATABASE_URL"]
    env["THREADLINE_DATABSE_URL"] = "postgresql://threadline@127.0.0.1:1/threadline"
    done = _spawn(env, "serve", "--port", "0")
    assert done.returncode == 2
    assert done.stderr == (
        "error: unknown setting THREADLINE_DATABSE_URL: did you mean THREADLINE_DATABASE_URL?\n"
    )
    assert not (tmp_path / "x.db").exists()
    # Every command refuses it, also one that reads no setting.
    schema = _spawn(env, "schema", "MessagePosted")
    assert (schema.returncode, schema.stdout) == (2, "")


def test_production_refuses_a_placeholder_secret_and_config_show_masks(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    weak = _spawn(
        server_env(url) | {"THREADLINE_ENV": "production", "THREADLINE_SECRET": "changeme"}, "serve"
    )
    assert weak.returncode == 2
    assert weak.stderr.count("\n") == 1
    assert weak.stderr.startswith("error: THREADLINE_SECRET is a placeholder")
    assert "changeme" not in weak.stderr
    strong = {
        "THREADLINE_SECRET": "Vq7Lx2Pz9Kc4Wm8Rt1Hy6Bn3Jd5Gf0Sa",
        "THREADLINE_TWILIO_AUTH_TOKEN": "t0k3n-Zq81-vV9x-L2",
    }
    env = server_env(url) | {"THREADLINE_ENV": "production"} | strong
    shown = _spawn(env, "config", "show", "--changed")
    assert shown.returncode == 0, shown.stderr
    assert strong["THREADLINE_SECRET"] not in shown.stdout
    assert strong["THREADLINE_TWILIO_AUTH_TOKEN"] not in shown.stdout
    assert "THREADLINE_TWILIO_AUTH_TOKEN" in shown.stdout
