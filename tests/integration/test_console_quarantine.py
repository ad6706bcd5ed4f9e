"""Issue 17, class 4: a quarantined conversation (a stored record that does not decode) is
shown by the console on a real server — listed with its position and reason in the
conversation list's API — while the other conversations are listed as before."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx

from harness.api_server import ApiServer
from tests.integration.test_console_access import PASSWORD, create_operator
from tests.support.ledgers import message, started
from threadline.ledger.store import open_ledger


def test_the_console_lists_quarantined_conversations(tmp_path: Path) -> None:
    path = tmp_path / "threadline.db"
    url = f"sqlite:///{path}"
    with open_ledger(url) as ledger:
        ledger.append_batch("c-bad", [started(), message("one"), message("two")])
        ledger.append_batch("c-good", [started(), message("fine")])
    con = sqlite3.connect(path)
    con.execute(
        "UPDATE stored_events SET state=? WHERE originator_id='c-bad' AND originator_version=2",
        (b"\x00not json",),
    )
    con.commit()
    con.close()
    done = create_operator(url, "ops", PASSWORD)
    assert done.returncode == 0, done.stderr

    with (
        ApiServer(url, tmp_path / "server.log") as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        login = client.post("/console/api/login", json={"name": "ops", "password": PASSWORD})
        assert login.status_code == 200, login.text
        deadline = time.monotonic() + 15
        while True:  # the server's global-log readers find the damage as they catch up
            body = client.get("/console/api/conversations").json()
            if body["quarantined"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert [(q["conversation_id"], q["first_broken"]) for q in body["quarantined"]] == [
            ("c-bad", 2)
        ]
        assert "unreadable" in body["quarantined"][0]["reason"]
        page = client.get("/console/").text
        assert 'id="quarantine"' in page
        timeline = client.get("/console/api/conversations/c-good/timeline")
        assert timeline.status_code == 200
