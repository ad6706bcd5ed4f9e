"""The server closes stale handoffs on its own: a real uvicorn server with short TTLs."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from harness.api_server import ApiServer, create_key


def _types(server: ApiServer, key: str, cid: str) -> list[dict[str, Any]]:
    with server.client(key) as c:
        r = c.get(f"/v1/conversations/{cid}/events", params={"limit": 1000})
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["events"]
    return events


def _expired(events: list[dict[str, Any]]) -> set[str]:
    return {e["data"]["handoff_id"] for e in events if e["type"] == "HandoffExpired"}


def test_unredeemed_handoffs_expire_and_the_server_stops_cleanly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'threadline.db'}"
    key = create_key(url, name="adapter")
    server = ApiServer(
        url,
        tmp_path / "server.log",
        THREADLINE_HANDOFF_OFFER_TTL_S="5",
        THREADLINE_HANDOFF_TOKEN_TTL_S="5",
        THREADLINE_HANDOFF_EXPIRY_INTERVAL_S="0.3",
    )
    with server:
        with server.client() as c:
            offered = c.post("/v1/conversations", json={"channel": "chat"}).json()
            accepted = c.post("/v1/conversations", json={"channel": "chat"}).json()
        offer = {
            "event_id": str(uuid.uuid4()),
            "type": "HandoffOffered",
            "data": {"handoff_id": "h-nobody", "channel": "webrtc", "reason": "pricing"},
        }
        with server.client(key) as c:
            r = c.post(f"/v1/conversations/{offered['conversation_id']}/events", json=offer)
            assert r.status_code == 201, r.text
        with server.client(accepted["visitor_token"]) as c:
            r = c.post(f"/v1/conversations/{accepted['conversation_id']}/handoffs", json={})
            assert r.status_code == 201, r.text
            ticket = r.json()

        # Nothing is closed before its deadline (offer TTL 5 s; token TTL 5 s + 5 s grace).
        time.sleep(1.0)
        assert not _expired(_types(server, key, offered["conversation_id"]))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            a = _expired(_types(server, key, offered["conversation_id"]))
            b = _expired(_types(server, key, accepted["conversation_id"]))
            if a and b:
                break
            time.sleep(0.3)
        assert a == {"h-nobody"}
        assert b == {ticket["handoff_id"]}
        # Closed once: later passes of the loop append nothing more.
        time.sleep(1.0)
        events = _types(server, key, accepted["conversation_id"])
        assert [e["type"] for e in events].count("HandoffExpired") == 1
    # uvicorn re-raises SIGTERM after a clean shutdown; the lifespan finished without errors.
    log = server.log()
    assert "Application shutdown complete" in log
    assert "Traceback" not in log
    assert "handoff expiry failed" not in log
