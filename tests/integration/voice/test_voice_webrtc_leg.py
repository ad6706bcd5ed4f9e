"""A real aiortc leg against a scripted browser peer in the same process, on 127.0.0.1 only,
with the real offline providers (espeak-ng speech in, pocketsphinx decode, espeak-ng out)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from harness.voice import (
    RATE,
    BrowserPeer,
    RecordingSink,
    eventually,
    loopback_only,
    silence,
)
from tests.support.voice_contract import visitor_voice
from threadline.channels.voice.pipeline import VoicePipeline
from threadline.channels.voice.ports import VisitorTurn
from threadline.channels.voice.stt_pocketsphinx import PocketsphinxSTT
from threadline.channels.voice.vocabulary import build_vocabulary
from threadline.channels.voice.webrtc import WebRtcLeg

pytestmark = [pytest.mark.voice, pytest.mark.anyio, pytest.mark.timeout(60)]

CHAT = ["I have a question about my January claim.", "It was for water damage in the kitchen."]
VOCABULARY = build_vocabulary(CHAT, ["January claim", "water damage"])
FIRST = "I see you were asking about your January claim. Let me pull that up for you now."


@pytest.fixture(scope="module")
def stt() -> PocketsphinxSTT:
    return PocketsphinxSTT()


class Call:
    def __init__(self, stt: PocketsphinxSTT, peer_timeout_s: float = 5.0) -> None:
        loopback_only()
        self.sink = RecordingSink()
        self.turns: list[VisitorTurn] = []
        self.tts = visitor_voice()
        self.pipeline = VoicePipeline(
            leg_id="leg-1",
            stt=stt,
            tts=self.tts,
            on_turn=self.reply,
            record=self.sink,
            vocabulary=VOCABULARY,
        )
        self.leg = WebRtcLeg(self.pipeline, peer_timeout_s=peer_timeout_s)
        self.browser = BrowserPeer()

    async def reply(self, turn: VisitorTurn) -> str:
        self.turns.append(turn)
        return f"You said {turn.text}."

    async def connect(self, first_utterance: str = FIRST) -> None:
        answer = await self.leg.accept(await self.browser.offer(), "offer", first_utterance)
        await self.browser.answer(answer)

    async def speak(self, text: str, lead_ms: int = 300) -> None:
        self.browser.mic.play(silence(lead_ms) + await self.tts.synthesize(text, RATE))


@pytest.fixture
async def call(stt: PocketsphinxSTT) -> AsyncIterator[Call]:
    c = Call(stt)
    yield c
    await c.browser.close()
    await c.leg.close("test_end")


async def test_media_stays_on_loopback(call: Call) -> None:
    await call.connect()
    assert call.leg.local_candidate_hosts()
    assert set(call.leg.local_candidate_hosts()) == {"127.0.0.1"}
    assert set(call.browser.candidate_hosts()) == {"127.0.0.1"}


async def test_first_utterance_is_heard_then_a_spoken_turn_is_answered(call: Call) -> None:
    await call.connect()
    spoken = await call.sink.wait_for("AgentSpoke")
    assert spoken[0].text == FIRST
    assert spoken[0].interrupted is False
    assert call.browser.loud_frames() > 50  # ~4 s of speech arrived as audio, not silence

    await call.speak("It was for water damage in the kitchen")
    [utterance] = await call.sink.wait_for("UtteranceTranscribed")
    assert utterance.text == "it was for water damage in the kitchen"
    assert utterance.role == "visitor"
    assert 0 < utterance.start_ms < utterance.end_ms
    assert utterance.confidence > 0.5
    assert [t.text for t in call.turns] == [utterance.text]

    replies = await call.sink.wait_for("AgentSpoke", 2)
    assert replies[1].text == "You said it was for water damage in the kitchen."
    events = [e for e in call.sink.events if e.type in {"UtteranceTranscribed", "AgentSpoke"}]
    assert all(e.leg_id == "leg-1" for e in events)
    assert [e.actor for e in events] == ["agent", "visitor", "agent"]


async def test_visitor_barging_in_cuts_the_agent_and_records_what_was_heard(call: Call) -> None:
    long_text = (
        "Thanks for waiting. I can see the claim was opened in January and that an adjuster "
        "was assigned the following week, and there are three documents attached to it."
    )
    await call.connect(long_text)
    await eventually(lambda: call.browser.first_sound_at() is not None)
    await asyncio.sleep(1.5)  # the agent is mid-sentence
    await call.speak("wait", lead_ms=0)
    [cut] = await call.sink.wait_for("AgentSpoke")
    assert cut.interrupted is True
    assert cut.text == long_text
    assert cut.spoken_text
    assert long_text.startswith(cut.spoken_text)
    assert len(cut.spoken_text) < len(long_text) / 2
    assert call.pipeline.stats.barge_ins == 1
    [utterance] = await call.sink.wait_for("UtteranceTranscribed")
    assert utterance.text == "wait"


async def test_a_peer_that_stops_sending_is_closed_after_the_timeout(stt: PocketsphinxSTT) -> None:
    call = Call(stt, peer_timeout_s=1.0)
    try:
        await call.connect("Hello.")
        await call.sink.wait_for("AgentSpoke")
        call.browser.mic.hang()
        [closed] = await call.sink.wait_for("LegClosed", within=5)
        assert closed.reason == "peer_timeout"
        assert call.sink.events[-1].type == "LegClosed"
        assert call.leg.pc.connectionState == "closed"
    finally:
        await call.browser.close()
        await call.leg.close("test_end")


async def test_a_peer_that_hangs_up_mid_sentence_loses_nothing(call: Call) -> None:
    await call.connect("Hello.")
    await call.sink.wait_for("AgentSpoke")
    await call.speak("It was for water damage in the kitchen", lead_ms=0)
    await eventually(lambda: call.browser.mic.pending_ms == 0)
    await call.browser.close()  # before the VAD's end-of-speech silence elapsed
    [closed] = await call.sink.wait_for("LegClosed", within=8)
    assert closed.reason.startswith("peer_")
    [utterance] = call.sink.of_type("UtteranceTranscribed")
    assert utterance.text == "it was for water damage in the kitchen"
    assert call.sink.events[-1].type == "LegClosed"
