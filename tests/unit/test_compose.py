"""compose.yaml checked against the code (issue 18), without a Docker engine: every
`THREADLINE_*` variable is one the code reads, every command parses with the CLI's
registered commands, and every published or probed port is the one the service listens on.
Kafka runs in KRaft mode (no ZooKeeper) and PostgreSQL is the database."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from threadline.app.cli import build
from threadline.app.settings import variables

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("access", "agent", "app", "channels", "handoff", "ledger", "projections", "streaming")


def compose() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def services() -> dict[str, dict[str, Any]]:
    out = compose()["services"]
    assert isinstance(out, dict)
    return out


def threadline_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services().items() if s.get("image", "").startswith("threadline")}


def settings_names() -> set[str]:
    """Every THREADLINE_* variable of the one configuration tree."""
    return {name for name, _, _ in variables()}


def literal_names() -> set[str]:
    """THREADLINE_* names that code outside the settings classes reads by name."""
    found: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found |= set(re.findall(r"[\"'](THREADLINE_[A-Z0-9_]+)[\"']", path.read_text()))
    return found


def test_every_threadline_variable_is_read_by_the_code() -> None:
    known = settings_names() | literal_names()
    assert "THREADLINE_DATABASE_URL" in known  # the scan itself works
    used = {
        name
        for service in threadline_services().values()
        for name in (service.get("environment") or {})
        if name.startswith("THREADLINE_")
    }
    assert used, "no THREADLINE_ variable found in compose.yaml"
    assert sorted(used - known) == []


@pytest.mark.parametrize("name", sorted(threadline_services()))
def test_every_command_parses_with_the_cli(name: str) -> None:
    argv = threadline_services()[name]["command"]
    assert argv[0] == "threadline"
    group: Any = typer.main.get_command(build())  # a click group (typer may vendor click)
    ctx = group.make_context("threadline", list(argv[1:]), resilient_parsing=False)
    with ctx:
        sub = group.get_command(ctx, argv[1])
        assert sub is not None, f"{argv[1]} is not a registered command"
        sub.make_context(argv[1], list(argv[2:]), parent=ctx)  # raises on unknown options


def _probe_port(service: dict[str, Any]) -> int | None:
    test = " ".join((service.get("healthcheck") or {}).get("test", []))
    match = re.search(r"127\.0\.0\.1:(\d+)/", test)
    return int(match.group(1)) if match else None


def test_ports_match_what_the_services_listen_on() -> None:
    svc = services()
    api = svc["api"]
    command = api["command"]
    port = int(command[command.index("--port") + 1])
    assert [p.rsplit(":", 1)[1] for p in api["ports"]] == [str(port)]
    assert _probe_port(api) == port
    for name, variable in (
        ("relay", "THREADLINE_RELAY_METRICS_PORT"),
        ("consumer", "THREADLINE_CONSUMER_METRICS_PORT"),
    ):
        assert variable in settings_names()
        assert _probe_port(svc[name]) == int(svc[name]["environment"][variable])
    bootstrap = svc["api"]["environment"]["THREADLINE_KAFKA_BOOTSTRAP_SERVERS"]
    host, kafka_port = bootstrap.split(":")
    assert host == "kafka"
    assert (
        f"PLAINTEXT://kafka:{kafka_port}"
        in svc["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    )
    assert "@postgres:5432/" in svc["api"]["environment"]["THREADLINE_DATABASE_URL"]


def test_kafka_in_kraft_mode_and_postgresql() -> None:
    svc = services()
    kafka = svc["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "KAFKA_CONTROLLER_QUORUM_VOTERS" in env
    assert not any("ZOOKEEPER" in k for k in env)
    assert "zookeeper" not in svc
    assert svc["postgres"]["image"].startswith("postgres:")
