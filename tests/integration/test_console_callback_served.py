"""Nobody online, on the real server (`threadline serve` subprocess, SQLite, the tool tables
seeded by `threadline seed`): the visitor asks for a person, is told nobody is online and
offered a callback, accepts a slot, and it is booked in the scheduling tool's tables."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from harness.api_server import ApiServer
from harness.voice_browser import seed
from threadline.agent.sqltools.seed import DEMO_MEMBER
from threadline.handoff.human import HumanDesk


def test_nobody_online_visitor_books_a_callback(tmp_path: Path) -> None:
    db = tmp_path / "threadline.db"
    url = f"sqlite:///{db}"
    seed(url)
    with (
        ApiServer(url, tmp_path / "server.log") as server,
        httpx.Client(base_url=server.base_url, timeout=30) as visitor,
    ):
        r = visitor.post("/v1/conversations", json={"channel": "chat"})
        assert r.status_code == 201, r.text
        cid = r.json()["conversation_id"]
        visitor.headers["Authorization"] = "Bearer " + r.json()["visitor_token"]

        def say(text: str) -> str:
            r = visitor.post(f"/v1/conversations/{cid}/messages", json={"text": text})
            assert r.status_code == 201, r.text
            reply = r.json()["reply"]
            assert isinstance(reply, str)
            return reply

        say("Hi, I have a question about my January claim")
        member = DEMO_MEMBER
        say(f"My date of birth is {member.date_of_birth}, member number {member.member_id}")
        offered = say("Can I speak to a person please?")
        assert offered.startswith(HumanDesk.nobody_online())
        slots = say("book a callback")
        assert "next free times" in slots
        booked = say("The first one please, book it")
        assert "booked" in booked.lower(), booked
        r = visitor.get(f"/v1/conversations/{cid}/events", params={"limit": 1000})
        events = r.json()["events"]
    types = [e["type"] for e in events]
    assert types.count("HumanRequested") == 1
    results = [e for e in events if e["type"] == "ToolResulted"]
    appointment = [e for e in results if "APT-" in str(e["data"])]
    assert len(appointment) == 1, results
    # The scheduling tool's own tables: one appointment for the member, its slot taken.
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT a.appointment_id, a.member_id, s.booked FROM tool_appointments a "
            "JOIN tool_slots s ON s.slot_id = a.slot_id"
        ).fetchall()
    assert len(rows) == 1
    appointment_id, member_id, slot_booked = rows[0]
    assert member_id == DEMO_MEMBER.member_id
    assert slot_booked == 1
    assert appointment_id in str(appointment[0]["data"])
