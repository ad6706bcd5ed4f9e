"""The webhooks as `threadline serve` mounts them: real server process, SQLite file."""

from __future__ import annotations

from pathlib import Path

import httpx

from harness.api_server import ApiServer
from threadline.channels.messaging.twilio_signature import compute_signature
from threadline.ledger.store import open_ledger

TOKEN = "served-auth-token"


def test_signed_sms_through_threadline_serve(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'threadline.db'}"
    form = [
        ("MessageSid", "SM" + "7" * 32),
        ("From", "+15551230001"),
        ("To", "+15559990000"),
        ("Body", "Is my January claim paid?"),
    ]
    with ApiServer(url, tmp_path / "server.log", THREADLINE_TWILIO_AUTH_TOKEN=TOKEN) as server:
        endpoint = server.base_url + "/v1/channels/twilio/sms"
        signature = compute_signature(TOKEN, endpoint, form)
        bad = httpx.post(endpoint, data=dict(form), headers={"X-Twilio-Signature": "x" * 28})
        assert bad.status_code == 403
        for _ in range(2):  # the provider retries: one conversation, one message
            ok = httpx.post(endpoint, data=dict(form), headers={"X-Twilio-Signature": signature})
            assert ok.status_code == 200, ok.text
        # WhatsApp Cloud is not configured on this server: refused, nothing recorded.
        assert (
            httpx.post(server.base_url + "/v1/channels/whatsapp", content=b"{}").status_code == 503
        )
    ledger = open_ledger(url)
    try:
        events = ledger.read_all()
        started = [e for e in events if e.type == "ConversationStarted"]
        assert len(started) == 1
        cid = started[0].conversation_id
        visitor = [
            e
            for e in ledger.read(cid)
            if e.type == "MessagePosted" and e.data.role == "visitor"  # type: ignore[attr-defined]
        ]
        assert [e.data.text for e in visitor] == ["Is my January claim paid?"]  # type: ignore[attr-defined]
    finally:
        ledger.close()


def test_continue_by_text_from_chat(tmp_path: Path) -> None:
    """Chat → "continue by text" link → the visitor sends the prefilled SMS → same conversation."""
    url = f"sqlite:///{tmp_path / 'threadline.db'}"
    env = {"THREADLINE_TWILIO_AUTH_TOKEN": TOKEN, "THREADLINE_TWILIO_SMS_FROM": "+15559990000"}
    with ApiServer(url, tmp_path / "server.log", **env) as server:
        created = httpx.post(server.base_url + "/v1/conversations", json={})
        assert created.status_code == 201, created.text
        cid = created.json()["conversation_id"]
        visitor = {"Authorization": f"Bearer {created.json()['visitor_token']}"}
        said = httpx.post(
            f"{server.base_url}/v1/conversations/{cid}/messages",
            json={"text": "Hi, I am asking about my January claim"},
            headers=visitor,
        )
        assert said.status_code in (200, 201), said.text
        handoffs = f"{server.base_url}/v1/conversations/{cid}/handoffs"
        # No SIP trunk on this server: dial-out is refused and nothing is recorded.
        before = httpx.get(f"{server.base_url}/v1/conversations/{cid}/events", headers=visitor)
        refused = httpx.post(handoffs, json={"channel": "pstn"}, headers=visitor)
        assert refused.status_code == 503
        after = httpx.get(f"{server.base_url}/v1/conversations/{cid}/events", headers=visitor)
        assert after.json() == before.json()
        ticket = httpx.post(handoffs, json={"channel": "sms"}, headers=visitor)
        assert ticket.status_code == 201, ticket.text
        link = ticket.json()["link"]
        assert link.startswith("sms:+15559990000?&body=Continue%20my%20conversation%20tl1.")
        body = httpx.QueryParams(link.split("?", 1)[1])["body"]
        form = [("MessageSid", "SM" + "8" * 32), ("From", "+15557770000"), ("Body", body)]
        endpoint = server.base_url + "/v1/channels/twilio/sms"
        signature = compute_signature(TOKEN, endpoint, form)
        sent = httpx.post(endpoint, data=dict(form), headers={"X-Twilio-Signature": signature})
        assert sent.status_code == 200, sent.text
    ledger = open_ledger(url)
    try:
        events = ledger.read(cid)
        types = [e.type for e in events]
        assert "HandoffCompleted" in types
        sms_leg = [e for e in events if e.type == "LegOpened" and e.data.channel == "sms"]  # type: ignore[attr-defined]
        assert len(sms_leg) == 1
        first = next(e.data for e in events if e.type == "HandoffCompleted")
        assert "january" in first.first_utterance.lower()  # type: ignore[attr-defined]
        assert len({e.conversation_id for e in ledger.read_all()}) == 1
    finally:
        ledger.close()
