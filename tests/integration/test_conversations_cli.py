"""`threadline conversations list|show` and the 80-column `replay` on a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from threadline.app.cli import build
from threadline.ledger.envelope import NewEvent
from threadline.ledger.store import open_ledger

LONG = "I would like to know when my January claim CLM-48213 will be paid, " * 3


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("THREADLINE_DATABASE_URL", url)
    with open_ledger(url) as ledger:
        for cid, channel, tenant in (("c-chat", "chat", "acme"), ("c-sms", "sms", "globex")):
            ledger.append(
                cid, NewEvent("ConversationStarted", {"channel": channel, "tenant": tenant})
            )
            ledger.append(cid, NewEvent("LegOpened", {"channel": channel}, leg_id=f"{cid}-leg-1"))
        leg = "c-chat-leg-1"
        ledger.append(
            "c-chat", NewEvent("MessagePosted", {"role": "visitor", "text": LONG}, leg_id=leg)
        )
        ledger.append(
            "c-chat",
            NewEvent(
                "IdentityVerified", {"method": "otp", "level": 2, "subject": "m1"}, leg_id=leg
            ),
        )
        ledger.append("c-chat", NewEvent("LegOpened", {"channel": "webrtc"}, leg_id="voice-1"))
        ledger.append(
            "c-chat", NewEvent("LegClosed", {"reason": "visitor hung up"}, leg_id="voice-1")
        )
        ledger.append("c-chat", NewEvent("ConversationResolved", {"outcome": "resolved"}))
    return url


def run(*args: str, columns: int = 80) -> tuple[int, str, str]:
    result = CliRunner().invoke(build(), list(args), env={"COLUMNS": str(columns)})
    return result.exit_code, result.stdout, result.stderr


def test_list_filters_and_json(db_url: str) -> None:
    code, out, err = run("conversations", "list")
    assert code == 0, err
    assert "c-chat" in out
    assert "c-sms" in out
    assert all(len(line) <= 80 for line in out.splitlines())

    code, out, _ = run("conversations", "list", "--json")
    rows = {r["conversation_id"]: r for r in json.loads(out)}
    assert rows["c-chat"]["channels"] == ["chat", "webrtc"]
    assert rows["c-chat"]["status"] == "resolved"
    assert rows["c-sms"]["tenant"] == "globex"

    def ids(*args: str) -> list[str]:
        code, out, err = run("conversations", "list", "--json", *args)
        assert code == 0, err
        return sorted(r["conversation_id"] for r in json.loads(out))

    assert ids("--tenant", "acme") == ["c-chat"]
    assert ids("--channel", "webrtc") == ["c-chat"]
    assert ids("--channel", "sms", "--tenant", "acme") == []
    assert ids("--since", "1h") == ["c-chat", "c-sms"]
    assert ids("--since", "2999-01-01") == []
    assert len(ids("--limit", "1")) == 1


def test_list_refuses_a_bad_since_in_one_line(db_url: str) -> None:
    code, _, err = run("conversations", "list", "--since", "yesterday")
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "--since" in err


def test_show_summarises_legs_verification_and_transcript(db_url: str) -> None:
    code, out, err = run("conversations", "show", "c-chat")
    assert code == 0, err
    assert "conversation c-chat: resolved, tenant acme" in out
    assert "webrtc   5 to 6, closed (visitor hung up); voice-1" in out
    assert "verification: level 2 by otp on chat (c-chat-leg-1)" in out
    assert "visitor: I would like to know" in out
    assert all(len(line) <= 80 for line in out.splitlines())
    # The long turn is wrapped, not cut: every word is there.
    assert " ".join(out.split()).count("will be paid,") == 3

    code, out, _ = run("conversations", "show", "c-chat", "--json")
    doc = json.loads(out)
    assert [leg["channel"] for leg in doc["legs"]] == ["chat", "webrtc"]
    assert doc["verification"]["level"] == 2
    assert doc["transcript"][2]["text"] == LONG

    code, _, err = run("conversations", "show", "nope")
    assert code == 1
    assert "does not exist" in err


def test_replay_fits_80_columns_unless_wide(db_url: str) -> None:
    code, out, _ = run("replay", "c-chat")
    assert code == 0
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert any("MessagePosted" in line and line.endswith("…") for line in lines)

    code, out, _ = run("replay", "c-chat", "--wide")
    assert code == 0
    assert LONG.strip() in out  # nothing cut
    assert "leg_id=c-chat-leg-1" in out

    code, out, _ = run("replay", "c-chat", "--as", "transcript")
    assert all(len(line) <= 80 for line in out.splitlines())
