"""A voice handoff accepted on replica A and redeemed on replica B (issue 18): two `threadline
serve` processes on one PostgreSQL, a real aiortc peer for the visitor's browser, ICE on
127.0.0.1. The visitor accepts the offer through A (A starts preparing the first utterance's
audio, as the widget's button makes it do); the WebRTC session is opened on B with the
token A issued. B redeems it exactly once, composes the first utterance from the shared
ledger and speaks it; what A prepared is A's own and is not needed."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.api_server import ApiServer, create_key
from harness.postgres import PostgresCluster
from harness.voice import BrowserPeer, loopback_only

pytestmark = [pytest.mark.postgres, pytest.mark.voice, pytest.mark.timeout(240)]

VOICE = {"THREADLINE_ICE_HOST_ADDRESSES": "127.0.0.1"}


def test_a_voice_handoff_accepted_on_a_is_redeemed_once_on_b(
    postgres_cluster: PostgresCluster, tmp_path: Path
) -> None:
    loopback_only()
    url = postgres_cluster.create_database(f"voice_{uuid.uuid4().hex[:12]}")
    key = create_key(url, name="adapter")
    a = ApiServer(url, tmp_path / "a.log", access_log=False, **VOICE)
    b = ApiServer(url, tmp_path / "b.log", access_log=False, **VOICE)

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        on_a = httpx.AsyncClient(base_url=a.base_url, timeout=60)
        on_b = httpx.AsyncClient(base_url=b.base_url, timeout=60)
        adapter = httpx.AsyncClient(
            base_url=a.base_url, timeout=60, headers={"Authorization": f"Bearer {key}"}
        )
        peer, second = BrowserPeer(), BrowserPeer()
        try:
            conv = (await on_a.post("/v1/conversations", json={"channel": "chat"})).json()
            cid = conv["conversation_id"]
            visitor = {"Authorization": "Bearer " + conv["visitor_token"]}
            said = await on_a.post(
                f"/v1/conversations/{cid}/messages",
                json={"text": "Hi, I have a question about my January claim."},
                headers=visitor,
            )
            assert said.status_code in (200, 201), said.text
            offered = await adapter.post(
                f"/v1/conversations/{cid}/events",
                json={
                    "event_id": str(uuid.uuid4()),
                    "type": "HandoffOffered",
                    "data": {"handoff_id": "h-voice", "channel": "webrtc", "reason": "pricing"},
                },
            )
            assert offered.status_code == 201, offered.text
            ticket = await on_a.post(
                f"/v1/conversations/{cid}/handoffs",
                json={"handoff_id": "h-voice"},
                headers=visitor,
            )
            assert ticket.status_code == 201, ticket.text
            opened = await on_b.post(
                "/v1/voice/sessions",
                json={
                    "handoff_token": ticket.json()["handoff_token"],
                    "sdp": await peer.offer(),
                    "type": "offer",
                },
                headers=visitor,
            )
            assert opened.status_code == 201, opened.text
            await peer.answer(opened.json()["sdp"])
            deadline = asyncio.get_running_loop().time() + 90
            while True:
                page = await adapter.get(f"/v1/conversations/{cid}/events?limit=1000")
                events: list[dict[str, Any]] = page.json()["events"]
                if any(e["type"] == "AgentSpoke" for e in events):
                    break
                assert asyncio.get_running_loop().time() < deadline, [e["type"] for e in events]
                await asyncio.sleep(0.5)
            # A second redeem of the same token, on either replica, is refused.
            again = await on_a.post(
                "/v1/voice/sessions",
                json={
                    "handoff_token": ticket.json()["handoff_token"],
                    "sdp": await second.offer(),
                    "type": "offer",
                },
                headers=visitor,
            )
            return events, {"again": again.status_code, "ticket": ticket.json()}
        finally:
            await peer.close()
            await second.close()
            for client in (on_a, on_b, adapter):
                await client.aclose()

    with a, b:
        events, extra = asyncio.run(scenario())
        log_b = b.log()
    types = [e["type"] for e in events]
    assert types.count("HandoffAccepted") == 1
    assert types.count("HandoffCompleted") == 1, types
    assert extra["again"] == 401, extra  # the token is spent (TokenRejectedError)
    [completed] = [e for e in events if e["type"] == "HandoffCompleted"]
    [leg] = [e for e in events if e["type"] == "LegOpened" and e["data"]["channel"] == "webrtc"]
    spoken = [e for e in events if e["type"] == "AgentSpoke" and e["leg_id"] == leg["leg_id"]]
    assert spoken, (types, log_b)
    assert spoken[0]["data"]["text"] == completed["data"]["first_utterance"]
    assert "january" in completed["data"]["first_utterance"].lower()
