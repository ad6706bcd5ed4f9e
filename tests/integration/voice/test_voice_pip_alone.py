"""Voice from pip alone: a real server whose PATH holds only the virtualenv (no espeak-ng,
no sox) hears an unseen sentence word for word and speaks a first utterance that the
recogniser transcribes back; a server whose voice model is missing answers 503 before the
handoff token is redeemed, appends nothing, and said so in one start-up line."""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.api_server import ApiServer
from harness.voice import BrowserPeer, eventually, loopback_only, silence
from tests.integration.voice.test_voice_http import conversation_with_ticket, offer_sdp, stream

pytestmark = [pytest.mark.voice, pytest.mark.timeout(180)]

UNSEEN = "could you also send me the confirmation by email please"


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]+", " ", text.lower()).split()


def venv_only_path() -> str:
    venv_bin = str(Path(sys.executable).parent)
    for tool in ("espeak-ng", "sox"):
        assert shutil.which(tool, path=venv_bin) is None
    return venv_bin


@pytest.fixture(scope="module")
def pip_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    tmp = tmp_path_factory.mktemp("voice-pip")
    with ApiServer(
        f"sqlite:///{tmp / 'db.sqlite'}",
        tmp / "server.log",
        access_log=False,
        PATH=venv_only_path(),
        THREADLINE_ICE_HOST_ADDRESSES="127.0.0.1",
        THREADLINE_VOICE_PEER_TIMEOUT_S="3",
    ) as running:
        yield running


async def recorded(http: httpx.AsyncClient, conv: dict[str, Any], event_type: str) -> None:
    """Polls the conversation slowly (the API rate-limits a visitor token)."""
    url = f"/v1/conversations/{conv['conversation_id']}/events?limit=1000"
    headers = {"Authorization": f"Bearer {conv['visitor_token']}"}
    for _ in range(80):
        page = await http.get(url, headers=headers)
        if page.status_code == 200 and any(e["type"] == event_type for e in page.json()["events"]):
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"no {event_type} was recorded")


def test_a_call_hears_an_unseen_sentence_and_is_heard_with_only_the_venv(
    pip_only: ApiServer,
) -> None:
    loopback_only()
    conv, token = conversation_with_ticket(pip_only)

    async def call() -> tuple[dict[str, Any], bytes]:
        from threadline.channels.voice.tts_piper import PiperTTS

        speech = await PiperTTS().synthesize(UNSEEN, 48_000)
        peer = BrowserPeer()
        sdp = await peer.offer()
        async with httpx.AsyncClient(base_url=pip_only.base_url, timeout=30) as http:
            opened = await http.post(
                "/v1/voice/sessions", json={"handoff_token": token, "sdp": sdp, "type": "offer"}
            )
            assert opened.status_code == 201, opened.text
            await peer.answer(opened.json()["sdp"])
            await eventually(lambda: peer.loud_frames() > 10, within=30)
            # Speak once the first utterance has played out: the server records AgentSpoke
            # when its last frame left (a pause between sentences on a loaded machine is not
            # the end of it), and its tail has reached the peer (0.4 s of quiet).
            await recorded(http, conv, "AgentSpoke")
            await eventually(
                lambda: len(peer.heard) > 60 and all(r < 300 for _, r in peer.heard[-20:]),
                within=30,
            )
            first_utterance_audio = bytes(peer.audio)
            peer.mic.play(speech + silence(1500))
            await recorded(http, conv, "UtteranceTranscribed")
            await http.delete(
                f"/v1/voice/sessions/{opened.json()['leg_id']}",
                headers={"Authorization": f"Bearer {conv['visitor_token']}"},
            )
        await peer.close()
        return opened.json(), first_utterance_audio

    opened, heard = asyncio.run(call())
    events = stream(pip_only, conv)
    [said] = [e["data"] for e in events if e["type"] == "UtteranceTranscribed"]
    assert words(said["text"]) == words(UNSEEN), said
    assert said["model"] == "whisper-tiny.en-ct2-int8"
    assert said["low_confidence"] is False
    assert said["ended_at"] is not None
    [completed] = [e["data"] for e in events if e["type"] == "HandoffCompleted"]
    spoken = [e["data"] for e in events if e["type"] == "AgentSpoke"]
    assert spoken[0]["text"] == completed["first_utterance"]
    assert spoken[0]["first_audio_at"] is not None

    async def transcribe_back() -> str:
        from threadline.channels.voice.stt_whisper import WhisperSTT

        return (await WhisperSTT().transcribe(heard, 16_000)).text

    back = words(asyncio.run(transcribe_back()))
    expected = words(completed["first_utterance"])
    # The peer heard the whole first utterance through Opus: transcribed back by tiny.en with
    # WER ≤ 0.15 (measured 4 errors in 34 words: "voice" heard as "boys" and the like).
    from harness.voice_wer import edit_distance

    assert edit_distance(expected, back) <= max(1, len(expected) * 15 // 100), (expected, back)
    assert opened["conversation_id"] == conv["conversation_id"]


def test_a_missing_voice_is_503_before_the_token_is_redeemed(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    tmp = tmp_path_factory.mktemp("voice-missing")
    with ApiServer(
        f"sqlite:///{tmp / 'db.sqlite'}",
        tmp / "server.log",
        access_log=False,
        PATH=venv_only_path(),
        THREADLINE_PIPER_VOICE=str(tmp / "no-such-voice.onnx"),
    ) as server:
        conv, token = conversation_with_ticket(server)
        before = stream(server, conv)
        with server.client() as http:
            response = http.post(
                "/v1/voice/sessions",
                json={"handoff_token": token, "sdp": offer_sdp(), "type": "offer"},
            )
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "unavailable"
        assert response.json()["detail"] == "voice is unavailable on this server"
        assert stream(server, conv) == before  # not redeemed, nothing appended
        startup = server.log().split("Application startup complete")[0]
        lines = [ln for ln in startup.splitlines() if "piper" in ln]
        assert len(lines) == 1, startup
        assert "voice is unavailable" in lines[0]
