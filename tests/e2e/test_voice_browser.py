"""Switch to voice, end to end, in real headless Chromium inside a loopback-only network
namespace: chat → offer → click → WebRTC to the aiortc server → the browser hears the agent →
the fake microphone's speech is transcribed → the voice turns show in the widget's thread."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import netns
from harness.browser import artifact
from harness.voice_browser import (
    RECORD_INBOUND_AUDIO,
    chat_until_offer,
    chromium_with_mic,
    events,
    fake_mic_wav,
    heard_audio,
    switch_to_voice,
    voice_server,
    wait_for_event,
    wait_js,
)

pytestmark = [pytest.mark.browser, pytest.mark.voice, pytest.mark.timeout(240)]

# A sentence never said in the chat: the recogniser is open-vocabulary, biased by the context
# but never forced into its phrases.
SPOKEN = "could you also send me the confirmation by email please"


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]+", " ", text.lower()).split()


def transcribe(pcm: bytes, rate: int) -> str:
    from threadline.channels.voice.stt_whisper import WhisperSTT

    return asyncio.run(WhisperSTT().transcribe(pcm, rate)).text


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def test_switch_to_voice_in_chromium(tmp_path: Path) -> None:
    if not netns.inside() and netns.available():
        # Re-run this very test where only `lo` exists: no media can leave 127.0.0.1.
        nodeid = f"{Path(__file__).relative_to(Path.cwd())}::test_switch_to_voice_in_chromium"
        done = subprocess.run(
            netns.command(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-x",
                    "-p",
                    "no:randomly",
                    nodeid,
                    "--basetemp",
                    str(tmp_path / "inner"),
                ]
            ),
            env=netns.env(),
            capture_output=True,
            text=True,
            timeout=230,
        )
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
        return
    run_scenario(tmp_path)


def run_scenario(tmp_path: Path) -> None:
    # The fake file starts playing at getUserMedia: the call must be up before the speech
    # starts, even on a loaded machine.
    wav = fake_mic_wav(tmp_path / "mic.wav", SPOKEN, lead_silence_s=6.0)
    with voice_server(tmp_path) as server, chromium_with_mic(wav) as browser:
        page = browser.new_page()
        page.add_init_script(RECORD_INBOUND_AUDIO)
        page.goto(f"{server.base_url}/embed?tl_voice_processing=off")
        chat_until_offer(page)
        heard = switch_to_voice(page)

        assert heard["bytesReceived"] > 0
        assert heard["totalAudioEnergy"] > 0
        if netns.inside():
            assert set(heard["candidates"]) <= {"127.0.0.1"}, heard["candidates"]
        cid, token, leg_id = heard["conversationId"], heard["token"], heard["legId"]
        # The microphone stays silent for 6 s after getUserMedia: the first ~2.5 s of the
        # call carry only the agent's first utterance.
        time.sleep(2.5)
        agent_audio, agent_rate = heard_audio(page)

        stream = wait_for_event(server, token, cid, "UtteranceTranscribed", within=30)
        wait_js(
            page,
            "() => [...document.querySelectorAll('.tl-visitor .tl-channel')]"
            ".some(c => c.textContent.endsWith('voice'))",
        )
        # The agent answers the spoken turn by voice; its AgentSpoke lands once played.
        wait_js(
            page,
            "() => [...document.querySelectorAll('.tl-agent .tl-channel')]"
            ".filter(c => c.textContent.endsWith('voice')).length >= 2",
            timeout_s=30,
        )
        page.screenshot(path=str(artifact("voice/switch-to-voice.png")), full_page=True)
        thread = page.inner_text(".tl-thread")

        page.click(".tl-hangup")
        stream = wait_for_event(server, token, cid, "LegClosed", within=15)
        stream = events(server, token, cid)

    on_leg = [e for e in stream if e["leg_id"] == leg_id]
    types = [e["type"] for e in on_leg]
    assert types[:3] == ["LegOpened", "IdentityVerified", "HandoffCompleted"], types
    assert on_leg[0]["data"]["channel"] == "webrtc"
    verified = on_leg[1]["data"]
    assert verified["method"] == "handoff_token"
    assert verified["level"] >= 1
    assert not [t for t in types if t in ("IdentityClaimed", "VerificationFailed")]
    first = on_leg[2]["data"]["first_utterance"]
    assert "january" in first.lower(), first
    assert "claim" in first.lower(), first

    [heard_text] = [e["data"] for e in on_leg if e["type"] == "UtteranceTranscribed"][:1]
    assert heard_text["role"] == "visitor"
    assert words(heard_text["text"]) == words(SPOKEN), heard_text
    assert heard_text["model"] == "whisper-tiny.en-ct2-int8"
    spoken = [e["data"] for e in on_leg if e["type"] == "AgentSpoke"]
    assert len(spoken) >= 2  # the first utterance (cut by the visitor) and the answer
    assert spoken[0]["text"] == first
    assert types[-1] == "LegClosed"
    assert on_leg[-1]["data"]["reason"] == "visitor_hangup"

    # The agent's first utterance was heard: the browser's decoded audio, transcribed back by
    # the recogniser, is the start of the recorded text.
    heard_back = words(transcribe(agent_audio, agent_rate))
    said = words(spoken[0]["text"])
    assert len(heard_back) >= 4, (heard_back, said)
    compared = heard_back[:-1]  # the last word may be cut by the recording's end
    assert edit_distance(compared, said[: len(compared)]) <= max(1, len(compared) // 5), (
        heard_back,
        said,
    )

    assert " ".join(words(SPOKEN)) in " ".join(words(thread))
    assert thread.count("· voice") >= 3  # the cut first utterance, the visitor, the answer
