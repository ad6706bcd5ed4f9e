"""The webhooks as `threadline serve` mounts them: real server process, SQLite file."""

from __future__ import annotations

from pathlib import Path

import httpx

from channels.messaging.twilio_signature import compute_signature
from ledger.store import open_ledger
from tests.support.api_server import ApiServer

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
