"""An operator joins the visitor's live voice call from the console, on the real server
(`threadline serve` subprocess, SQLite, offline voice providers, ICE on 127.0.0.1): two real
aiortc peers play the visitor's and the operator's browsers. Each hears the other; the call
is recorded on the conversation (OperatorJoinedCall / OperatorLeftCall); only the holder may
join, same-origin; after the operator hands back, the AI answers on the call again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.api_server import ApiServer
from harness.voice import RATE, BrowserPeer, eventually, loopback_only, silence
from tests.integration.test_console_access import PASSWORD, create_operator
from tests.support.voice_contract import visitor_voice
from threadline.channels.voice.tts_espeak import EspeakTTS

pytestmark = [pytest.mark.voice, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    tmp: Path = tmp_path_factory.mktemp("console-call")
    url = f"sqlite:///{tmp / 'db.sqlite'}"
    for name in ("alice", "bob"):
        done = create_operator(url, name, PASSWORD)
        assert done.returncode == 0, done.stderr
    with ApiServer(
        url, tmp / "server.log", access_log=False, THREADLINE_ICE_HOST_ADDRESSES="127.0.0.1"
    ) as running:
        yield running


async def login(server: ApiServer, name: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=server.base_url, timeout=30)
    r = await client.post("/console/api/login", json={"name": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return client


async def speech(tts: EspeakTTS, text: str) -> bytes:
    return silence(300) + await tts.synthesize(text, RATE)


def spoke_after(got: list[dict[str, Any]], mark: str, field: str) -> Iterator[dict[str, Any]]:
    """The AgentSpoke events after `mark` whose first audio left after the moment `mark`
    records in `field` (an utterance that never played has none)."""
    types = [e["type"] for e in got]
    start = types.index(mark)
    at = datetime.fromisoformat(got[start]["data"][field])
    for event in got[start:]:
        first = event["data"].get("first_audio_at") if event["type"] == "AgentSpoke" else None
        if first is not None and datetime.fromisoformat(first) > at:
            yield event


def test_operator_joins_the_voice_call_and_hands_back(server: ApiServer) -> None:
    loopback_only()
    tts = visitor_voice()

    async def scenario() -> list[dict[str, Any]]:
        visitor_http = httpx.AsyncClient(base_url=server.base_url, timeout=30)
        conv = (await visitor_http.post("/v1/conversations", json={"channel": "chat"})).json()
        cid = conv["conversation_id"]
        visitor_http.headers["Authorization"] = "Bearer " + conv["visitor_token"]
        await visitor_http.post(f"/v1/conversations/{cid}/messages", json={"text": "hi"})
        ticket = await visitor_http.post(f"/v1/conversations/{cid}/handoffs", json={})
        assert ticket.status_code == 201, ticket.text
        visitor, operator, other = BrowserPeer(), BrowserPeer(), BrowserPeer()
        alice, bob = await login(server, "alice"), await login(server, "bob")
        try:
            await visitor.open_leg(visitor_http, ticket.json()["handoff_token"])
            await eventually(lambda: visitor.loud_frames() > 10, within=20)  # the AI greets

            async def events() -> list[dict[str, Any]]:
                page = await visitor_http.get(
                    f"/v1/conversations/{cid}/events", params={"limit": 1000}
                )
                found: list[dict[str, Any]] = page.json()["events"]
                return found

            call = f"/console/api/conversations/{cid}/call"
            offer = {"sdp": await operator.offer(), "type": "offer"}

            # Only the operator holding the conversation joins its call.
            assert (await alice.post(call, json=offer)).status_code == 409
            assert (await alice.post(f"/console/api/conversations/{cid}/join")).status_code == 201
            cross = await alice.post(call, json=offer, headers={"Origin": "https://evil.test"})
            assert cross.status_code == 403
            other_offer = {"sdp": await other.offer(), "type": "offer"}
            assert (await bob.post(call, json=other_offer)).status_code == 409

            joined = await alice.post(call, json=offer)
            assert joined.status_code == 201, joined.text
            assert joined.json()["type"] == "answer"
            await operator.answer(joined.json()["sdp"])
            await asyncio.sleep(4)  # the AI's greeting, if still playing, was cut at join
            heard_before = visitor.loud_frames()

            operator.mic.play(await speech(tts, "This is Alice from the claims team"))
            await eventually(lambda: visitor.loud_frames() > heard_before + 25, within=20)
            visitor.mic.play(await speech(tts, "It was for water damage in the kitchen"))
            await eventually(lambda: operator.loud_frames() > 25, within=20)

            # Transcribed onto the stream while the person is on (the AI does not answer).
            deadline = asyncio.get_running_loop().time() + 30
            while True:
                types = [e["type"] for e in await events()]
                if "UtteranceTranscribed" in types[types.index("OperatorJoinedCall") :]:
                    break
                assert asyncio.get_running_loop().time() < deadline, types
                await asyncio.sleep(0.5)
            await asyncio.sleep(2)  # time enough for an answer, were the AI still on

            left = await alice.delete(call)
            assert left.status_code == 201, left.text
            assert (await alice.delete(call)).status_code == 409
            assert (await alice.post(f"/console/api/conversations/{cid}/leave")).status_code == 201

            # Back with the AI: the visitor's next words get a spoken answer.
            visitor.mic.play(await speech(tts, "What is the status of my January claim"))
            deadline = asyncio.get_running_loop().time() + 40
            while True:
                got = await events()
                types = [e["type"] for e in got]
                if any(spoke_after(got, "OperatorLeft", "left_at")):
                    return got
                assert asyncio.get_running_loop().time() < deadline, types
                await asyncio.sleep(0.5)
        finally:
            for peer in (visitor, operator, other):
                await peer.close()
            for client in (visitor_http, alice, bob):
                await client.aclose()

    got = asyncio.run(scenario())
    types = [e["type"] for e in got]
    assert types.count("OperatorJoinedCall") == 1
    assert types.count("OperatorLeftCall") == 1
    joined = next(e for e in got if e["type"] == "OperatorJoinedCall")
    assert joined["actor"] == "operator:alice"
    assert joined["data"]["operator"] == "alice"
    # While the operator was on the call, the AI said nothing there. What it was saying when
    # they joined was cut and recorded before OperatorJoinedCall (the join settles the leg's
    # recorder first); an AgentSpoke on the call can only be a reply dropped unplayed.
    on_call = types[types.index("OperatorJoinedCall") : types.index("OperatorLeftCall")]
    start = types.index("OperatorJoinedCall")
    played = [
        e["data"]
        for e in got[start : types.index("OperatorLeftCall")]
        if e["type"] == "AgentSpoke" and e["data"].get("first_audio_at") is not None
    ]
    assert played == [], played
    assert "UtteranceTranscribed" in on_call  # the visitor's words stay on the one stream
