"""A chat visitor is offered a call with the operator, on the real server (`threadline serve`
subprocess, SQLite, the default offline voice providers, ICE on 127.0.0.1), with two real
aiortc peers for the visitor's and the operator's browsers.

The operator holding the chat presses "call the visitor" (HandoffOffered, reason
operator_call, superseding the AI's own voice offer); the visitor accepts through the same
accept/redeem path as any voice handoff; the AI only says who is joining and answers
nothing while the person holds the conversation; the operator joins the call and is
transcribed as the operator; after the hand-back the AI's first spoken answer opens with
what the operator said."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.api_server import ApiServer
from harness.voice import RATE, BrowserPeer, eventually, loopback_only, silence
from tests.integration.test_console_access import PASSWORD, create_operator
from tests.support.voice_contract import visitor_voice
from threadline.channels.voice.tts_espeak import EspeakTTS
from threadline.handoff.human import OPERATOR_CALL, OPERATOR_CALL_OPENING, RECAP_LEAD

pytestmark = [pytest.mark.voice, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    tmp: Path = tmp_path_factory.mktemp("console-call-visitor")
    url = f"sqlite:///{tmp / 'db.sqlite'}"
    done = create_operator(url, "alice", PASSWORD)
    assert done.returncode == 0, done.stderr
    with ApiServer(
        url, tmp / "server.log", access_log=False, THREADLINE_ICE_HOST_ADDRESSES="127.0.0.1"
    ) as running:
        yield running


async def speech(tts: EspeakTTS, text: str) -> bytes:
    return silence(300) + await tts.synthesize(text, RATE)


def after(events: list[dict[str, Any]], type_name: str) -> list[dict[str, Any]]:
    types = [e["type"] for e in events]
    return events[types.index(type_name) :] if type_name in types else []


def test_the_operator_calls_the_chat_visitor(server: ApiServer) -> None:
    loopback_only()
    tts = visitor_voice()

    async def scenario() -> list[dict[str, Any]]:
        visitor_http = httpx.AsyncClient(base_url=server.base_url, timeout=30)
        conv = (await visitor_http.post("/v1/conversations", json={"channel": "chat"})).json()
        cid = conv["conversation_id"]
        visitor_http.headers["Authorization"] = "Bearer " + conv["visitor_token"]
        said = await visitor_http.post(
            f"/v1/conversations/{cid}/messages", json={"text": "I'd rather deal with a person"}
        )
        assert said.status_code == 201, said.text
        visitor, operator = BrowserPeer(), BrowserPeer()
        alice = httpx.AsyncClient(base_url=server.base_url, timeout=30)
        r = await alice.post("/console/api/login", json={"name": "alice", "password": PASSWORD})
        assert r.status_code == 200, r.text
        conversation = f"/console/api/conversations/{cid}"

        async def events() -> list[dict[str, Any]]:
            page = await visitor_http.get(f"/v1/conversations/{cid}/events", params={"limit": 1000})
            found: list[dict[str, Any]] = page.json()["events"]
            return found

        async def wait(check: Any, within: float = 40) -> list[dict[str, Any]]:
            deadline = asyncio.get_running_loop().time() + within
            while True:
                got = await events()
                if check(got):
                    return got
                assert asyncio.get_running_loop().time() < deadline, [e["type"] for e in got]
                await asyncio.sleep(0.5)

        try:
            # Only the holder calls; same-origin; one call offer at a time.
            assert (await alice.post(f"{conversation}/call-visitor")).status_code == 409
            assert (await alice.post(f"{conversation}/join")).status_code == 201
            cross = await alice.post(
                f"{conversation}/call-visitor", headers={"Origin": "https://evil.test"}
            )
            assert cross.status_code == 403
            before = len(await events())
            offered = await alice.post(f"{conversation}/call-visitor")
            assert offered.status_code == 201, offered.text
            handoff_id = offered.json()["handoff_id"]
            assert (await alice.post(f"{conversation}/call-visitor")).status_code == 409
            new = (await events())[before:]
            assert [e["type"] for e in new] == ["HandoffDeclined", "HandoffOffered"]
            assert new[0]["data"]["reason"] == "superseded"  # the AI's call-with-the-AI offer
            assert new[1]["data"] == {
                "handoff_id": handoff_id,
                "channel": "webrtc",
                "reason": OPERATOR_CALL,
            }
            assert new[1]["actor"] == "operator:alice"

            # The visitor accepts, as any voice offer (the widget's button does this).
            ticket = await visitor_http.post(
                f"/v1/conversations/{cid}/handoffs", json={"handoff_id": handoff_id}
            )
            assert ticket.status_code == 201, ticket.text
            await visitor.open_leg(visitor_http, ticket.json()["handoff_token"])
            got = await wait(lambda g: any(e["type"] == "AgentSpoke" for e in g))
            [done] = [e for e in got if e["type"] == "HandoffCompleted"]
            assert done["data"]["first_utterance"] == OPERATOR_CALL_OPENING
            [spoken] = [e for e in got if e["type"] == "AgentSpoke"]
            assert spoken["data"]["text"] == OPERATOR_CALL_OPENING

            # Before the operator is on: the visitor is heard, the AI does not answer.
            visitor.mic.play(await speech(tts, "Hello is anybody there"))
            await wait(lambda g: any(e["type"] == "UtteranceTranscribed" for e in g))
            await asyncio.sleep(2)
            assert sum(e["type"] == "AgentSpoke" for e in await events()) == 1

            joined = await alice.post(
                f"{conversation}/call", json={"sdp": await operator.offer(), "type": "offer"}
            )
            assert joined.status_code == 201, joined.text
            await operator.answer(joined.json()["sdp"])
            await asyncio.sleep(2)
            heard_before = visitor.loud_frames()
            operator.mic.play(await speech(tts, "Your January claim was paid yesterday"))
            await eventually(lambda: visitor.loud_frames() > heard_before + 25, within=20)
            await wait(
                lambda g: any(
                    e["type"] == "UtteranceTranscribed" and e["data"]["role"] == "operator"
                    for e in after(g, "OperatorJoinedCall")
                )
            )
            assert (await alice.delete(f"{conversation}/call")).status_code == 201
            assert (await alice.post(f"{conversation}/leave")).status_code == 201

            # Back with the AI: its first spoken answer opens with the operator's words.
            visitor.mic.play(await speech(tts, "What is the status of my January claim"))
            return await wait(
                lambda g: any(
                    e["type"] == "AgentSpoke" and e["data"]["text"].startswith(RECAP_LEAD)
                    for e in after(g, "OperatorLeft")
                )
            )
        finally:
            for peer in (visitor, operator):
                await peer.close()
            for client in (visitor_http, alice):
                await client.aclose()

    got = asyncio.run(scenario())
    types = [e["type"] for e in got]
    on_call = got[types.index("OperatorJoinedCall") : types.index("OperatorLeftCall")]
    operator_said = [
        e["data"]["text"]
        for e in on_call
        if e["type"] == "UtteranceTranscribed"
        and e["data"]["role"] == "operator"
        and not e["data"]["low_confidence"]
    ]
    assert operator_said
    recap = next(
        e["data"]["text"]
        for e in after(got, "OperatorLeft")
        if e["type"] == "AgentSpoke" and e["data"]["text"].startswith(RECAP_LEAD)
    )
    assert f'alice said: "{operator_said[-1]}' in recap or operator_said[-1] in recap
    # Nothing the AI said between the offer and the hand-back but who was joining.
    held = got[types.index("HandoffOffered") : types.index("OperatorLeft")]
    assert [e["data"]["text"] for e in held if e["type"] == "AgentSpoke"] == [OPERATOR_CALL_OPENING]
