"""`threadline replay --as …` and `threadline projections rebuild|status` on a SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.ledgers import open_configured
from threadline.app.cli import build
from threadline.ledger.envelope import NewEvent
from threadline.projections.service import open_metrics_view


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("THREADLINE_DATABASE_URL", url)
    monkeypatch.delenv("THREADLINE_PROJECTIONS_DATABASE_URL", raising=False)
    ledger = open_configured(url)
    append = ledger.append
    append("c1", NewEvent("ConversationStarted", {"channel": "chat"}))
    append("c1", NewEvent("LegOpened", {"channel": "chat"}, leg_id="chat-1"))
    append(
        "c1",
        NewEvent(
            "MessagePosted",
            {"role": "visitor", "text": "I have a question about my January claim CLM-48213."},
            leg_id="chat-1",
        ),
    )
    append(
        "c1",
        NewEvent(
            "IdentityVerified", {"method": "otp", "level": 2, "subject": "m1"}, leg_id="chat-1"
        ),
    )
    append("c1", NewEvent("HandoffOffered", {"handoff_id": "h1"}, leg_id="chat-1"))
    append("c1", NewEvent("HandoffAccepted", {"handoff_id": "h1"}, leg_id="chat-1"))
    append("c1", NewEvent("LegOpened", {"channel": "webrtc"}, leg_id="voice-1"))
    append(
        "c1",
        NewEvent(
            "IdentityVerified",
            {"method": "handoff_token", "level": 2, "subject": "m1"},
            leg_id="voice-1",
        ),
    )
    append(
        "c1",
        NewEvent(
            "HandoffCompleted",
            {"handoff_id": "h1", "leg_id": "voice-1", "first_utterance": "Hi"},
            leg_id="voice-1",
        ),
    )
    append(
        "c1",
        NewEvent(
            "AgentSpoke",
            {"text": "About your January claim, it was paid.", "interrupted": True,
             "spoken_text": "About your January claim"},
            leg_id="voice-1",
        ),
    )  # fmt: skip
    ledger.close()
    return url


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(build(), list(args))
    return result.exit_code, result.stdout, result.stderr


def test_replay_as_each_projection_point_in_time(db_url: str) -> None:
    code, out, err = run("replay", "c1", "--as", "context", "--json", "--upto", "4")
    assert code == 0, err
    ctx = json.loads(out)
    assert ctx["last_position"] == 4
    assert ctx["topic"]["phrase"] == "January claim"
    assert ctx["handoffs"] == []
    assert {e["value"] for e in ctx["entities"]} == {"January", "CLM-48213"}

    code, out, _ = run("replay", "c1", "--as", "context")
    assert code == 0
    assert "topic: January claim" in out
    assert "verified: level 2 by otp on chat (chat-1)" in out
    assert "handoff h1 to webrtc: completed" in out

    code, out, _ = run("replay", "c1", "--as", "transcript")
    assert code == 0
    assert "webrtc   agent: About your January claim [interrupted]" in out
    assert "-- switched to webrtc --" in out
    code, out, _ = run("replay", "c1", "--as", "transcript", "--json", "--upto", "3")
    assert [e["kind"] for e in json.loads(out)["entries"]] == [
        "conversation_started",
        "leg_opened",
        "message",
    ]

    code, out, _ = run("replay", "c1", "--as", "identity", "--json")
    state = json.loads(out)
    assert (state["level"], state["reverifications"]) == (2, 0)
    code, out, _ = run("replay", "c1", "--as", "identity")
    assert "leg voice-1 webrtc: level 2 by handoff_token (inherited)" in out

    code, out, _ = run("replay", "c1", "--json")  # events, as before
    assert len(out.splitlines()) == 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("replay", "nope", "--as", "context"), "does not exist"),
        (("replay", "c1", "--as", "context", "--upto", "0"), "--upto must be"),
        (("projections", "rebuild", "nope"), "unknown projection"),
    ],
)
def test_errors_are_one_line(db_url: str, args: tuple[str, ...], message: str) -> None:
    code, out, err = run(*args)
    assert code != 0
    assert message in err
    assert err.count("\n") == 1
    assert out == ""


def test_bad_view_name_is_a_usage_error(db_url: str) -> None:
    code, _, err = run("replay", "c1", "--as", "everything")
    assert code == 2
    assert "everything" in err


def test_rebuild_and_status(db_url: str) -> None:
    code, out, _ = run("projections", "status", "--json")
    assert code == 0
    assert json.loads(out) == [
        {"name": "metrics", "position": 0, "max_sequence": 10, "lag": 10, "pending_gaps": []}
    ]
    code, out, err = run("projections", "rebuild")
    assert code == 0, err
    assert "rebuilt metrics: 10 events to position 10" in out
    code, out, _ = run("projections", "status")
    assert code == 0
    assert "metrics" in out
    code, out, _ = run("projections", "status", "--json")
    assert json.loads(out)[0]["lag"] == 0
    view = open_metrics_view(db_url)
    try:
        m = view.metrics()
        assert (m.switched_conversations, m.funnel.completed, m.reverification_rate) == (1, 1, 0)
    finally:
        view.close()
    # Rebuilding again gives the same numbers, not double.
    code, out, _ = run("projections", "rebuild", "metrics")
    assert "rebuilt metrics: 10 events" in out
    view = open_metrics_view(db_url)
    try:
        assert view.metrics() == m
    finally:
        view.close()


def test_status_shows_a_partitioned_relay_per_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """THREADLINE_LOG_PARTITIONS > 1: the relay is tracked per partition, each row behind
    its own partition's head, not the global sequence."""
    from threadline.ledger.settings import LedgerSettings
    from threadline.ledger.store import open_ledger
    from threadline.projections.views import Batch
    from threadline.streaming.checkpoint import SqliteCheckpoint

    path = tmp_path / "parts.db"
    monkeypatch.setenv("THREADLINE_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("THREADLINE_LOG_PARTITIONS", "4")
    monkeypatch.setenv("THREADLINE_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # never contacted
    monkeypatch.setenv("THREADLINE_CONSUMER_DATABASE_URL", f"sqlite:///{tmp_path / 'view.db'}")
    monkeypatch.delenv("THREADLINE_PROJECTIONS_DATABASE_URL", raising=False)
    settings = LedgerSettings(database_url=f"sqlite:///{path}", log_partitions=4, privacy="off")
    with open_ledger(settings=settings) as ledger:
        for i in range(12):
            ledger.append(f"c{i}", NewEvent("ConversationStarted", {"channel": "chat"}))
        heads = ledger.recorder.partition_heads()  # type: ignore[attr-defined]
    SqliteCheckpoint(str(path), "relay.p1").record(Batch([], position=1))
    code, out, err = run("projections", "status", "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert "kafka.relay" not in rows
    for p in range(4):
        row = rows[f"kafka.relay.p{p}"]
        assert row["max_sequence"] == heads[p]
        assert row["position"] == (1 if p == 1 else 0)
        assert row["lag"] == heads[p] - row["position"]
    code, out, _ = run("projections", "status")
    assert code == 0
    assert "kafka.relay.p3" in out
