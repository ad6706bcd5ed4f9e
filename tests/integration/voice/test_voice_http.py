"""`/v1/voice/sessions` on a real server process: bad requests append nothing and do not use
up the token; a used or forged token is rejected and only the rejection is recorded; a real
aiortc peer gets an answer and hears the first utterance; the visitor can hang up."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.api_server import ApiServer
from harness.voice import BrowserPeer, eventually, loopback_only

pytestmark = [pytest.mark.voice, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    tmp: Path = tmp_path_factory.mktemp("voice-http")
    with ApiServer(
        f"sqlite:///{tmp / 'db.sqlite'}",
        tmp / "server.log",
        access_log=False,
        THREADLINE_ICE_HOST_ADDRESSES="127.0.0.1",
        THREADLINE_VOICE_PEER_TIMEOUT_S="2",
    ) as running:
        yield running


def conversation_with_ticket(server: ApiServer) -> tuple[dict[str, Any], str]:
    with server.client() as http:
        conv = http.post("/v1/conversations", json={"channel": "chat"}).json()
    with server.client(conv["visitor_token"]) as http:
        cid = conv["conversation_id"]
        http.post(f"/v1/conversations/{cid}/messages", json={"text": "hi", "message_id": None})
        ticket = http.post(f"/v1/conversations/{cid}/handoffs", json={})
        assert ticket.status_code == 201, ticket.text
    return conv, ticket.json()["handoff_token"]


def stream(server: ApiServer, conv: dict[str, Any]) -> list[dict[str, Any]]:
    with server.client(conv["visitor_token"]) as http:
        page = http.get(f"/v1/conversations/{conv['conversation_id']}/events?limit=1000")
        return list(page.json()["events"])


def offer_sdp() -> str:
    async def make() -> str:
        peer = BrowserPeer()
        try:
            return await peer.offer()
        finally:
            await peer.close()

    return asyncio.run(make())


@pytest.mark.parametrize(
    "body",
    [
        {"sdp": "v=0 not an offer", "type": "offer"},
        {"sdp": "m=audio 9 UDP/TLS/RTP/SAVPF 111", "type": "answer"},
        {"type": "offer"},
        {"sdp": "x" * 40_000, "type": "offer"},
        # Has an audio section, but nothing can answer it (no ICE credentials, no codec):
        # refused before the token is redeemed (issue 17, class 1).
        {"sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "type": "offer"},
        {"sdp": "m=audio\r\n", "type": "offer"},
    ],
)
def test_bad_requests_are_422_append_nothing_and_keep_the_token(
    server: ApiServer, body: dict[str, Any]
) -> None:
    conv, token = conversation_with_ticket(server)
    before = stream(server, conv)
    with server.client() as http:
        response = http.post("/v1/voice/sessions", json={"handoff_token": token, **body})
    assert response.status_code == 422, response.text
    assert response.json()["error"] in {"invalid_input", "validation_error", "invalid_request"}
    assert stream(server, conv) == before


def test_forged_token_is_401(server: ApiServer) -> None:
    with server.client() as http:
        response = http.post(
            "/v1/voice/sessions",
            json={"handoff_token": "forged.token.value", "sdp": offer_sdp(), "type": "offer"},
        )
    assert response.status_code == 401, response.text


def test_voice_session_opens_speaks_rejects_replay_and_hangs_up(server: ApiServer) -> None:
    loopback_only()
    conv, token = conversation_with_ticket(server)

    async def call() -> tuple[httpx.Response, httpx.Response, int, list[str]]:
        peer = BrowserPeer()
        sdp = await peer.offer()
        async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as http:
            opened = await http.post(
                "/v1/voice/sessions", json={"handoff_token": token, "sdp": sdp, "type": "offer"}
            )
            assert opened.status_code == 201, opened.text
            await peer.answer(opened.json()["sdp"])
            await eventually(lambda: peer.loud_frames() > 10, within=15)
            replay = await http.post(
                "/v1/voice/sessions", json={"handoff_token": token, "sdp": sdp, "type": "offer"}
            )
            hangup = await http.delete(
                f"/v1/voice/sessions/{opened.json()['leg_id']}",
                headers={"Authorization": f"Bearer {conv['visitor_token']}"},
            )
        hosts = list(peer.candidate_hosts())
        await peer.close()
        return opened, replay, hangup.status_code, hosts

    opened, replay, hangup_status, client_hosts = asyncio.run(call())
    assert set(client_hosts) == {"127.0.0.1"}
    body = opened.json()
    assert body["type"] == "answer"
    assert body["conversation_id"] == conv["conversation_id"]
    assert "a=candidate:" in body["sdp"]
    assert {ln.split()[4] for ln in body["sdp"].splitlines() if ln.startswith("a=candidate:")} == {
        "127.0.0.1"
    }
    assert replay.status_code == 401
    assert hangup_status == 204

    events = stream(server, conv)
    on_leg = [e for e in events if e["leg_id"] == body["leg_id"]]
    assert on_leg[0]["type"] == "LegOpened"
    assert on_leg[0]["data"]["channel"] == "webrtc"
    assert "HandoffCompleted" in [e["type"] for e in on_leg]
    assert on_leg[-1]["type"] == "LegClosed"
    assert on_leg[-1]["data"]["reason"] == "visitor_hangup"
    rejected = [e for e in events if e["type"] == "VerificationFailed"]
    assert [e["data"]["reason"] for e in rejected] == ["replayed"]
    assert events[-1]["type"] in {"LegClosed", "AgentSpoke"}


def test_hanging_up_needs_the_visitor_and_a_live_leg(server: ApiServer) -> None:
    conv, _ = conversation_with_ticket(server)
    with server.client(conv["visitor_token"]) as http:
        assert http.delete("/v1/voice/sessions/leg_nope").status_code == 404
    with server.client() as http:
        assert http.delete("/v1/voice/sessions/leg_nope").status_code in {401, 404}


def test_forged_tokens_append_nothing_and_hit_the_failed_auth_limit(server: ApiServer) -> None:
    """Last in the module: it spends this client address's failure budget (issue 17,
    class 2). A forged token naming a real conversation writes nothing there."""
    conv, token = conversation_with_ticket(server)
    version, payload, mac = token.split(".")
    forged = f"{version}.{payload}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}"
    before = stream(server, conv)
    sdp = offer_sdp()
    with server.client() as http:
        statuses = [
            http.post(
                "/v1/voice/sessions", json={"handoff_token": forged, "sdp": sdp, "type": "offer"}
            ).status_code
            for _ in range(40)
        ]
    assert set(statuses) <= {401, 429}
    assert statuses[-1] == 429
    assert stream(server, conv) == before
