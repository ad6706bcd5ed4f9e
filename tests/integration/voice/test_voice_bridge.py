"""An operator joins the visitor's live call through the MediaRelay bridge: real aiortc peers
on 127.0.0.1 (the visitor's and the operator's browsers, scripted microphones), the real leg
and pipeline with the offline providers (espeak-ng voices, pocketsphinx decode). Each side
hears the other, the AI neither answers nor speaks while the person is on, and answers again
once they have left."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from harness.voice import RATE, BrowserPeer, RecordingSink, eventually, loopback_only, silence
from tests.support.voice_contract import visitor_voice
from threadline.channels.voice.bridge_calls import CallBridges
from threadline.channels.voice.errors import CallNotBridgeableError
from threadline.channels.voice.pipeline import VoicePipeline
from threadline.channels.voice.ports import VisitorTurn
from threadline.channels.voice.stt_pocketsphinx import PocketsphinxSTT
from threadline.channels.voice.vocabulary import build_vocabulary
from threadline.channels.voice.webrtc import WebRtcLeg

pytestmark = [pytest.mark.voice, pytest.mark.anyio, pytest.mark.timeout(90)]

CHAT = ["I have a question about my January claim.", "It was for water damage in the kitchen."]
VOCABULARY = build_vocabulary(CHAT, ["January claim", "water damage"])


class Call:
    def __init__(self) -> None:
        loopback_only()
        self.sink = RecordingSink()
        self.turns: list[VisitorTurn] = []
        self.tts = visitor_voice()
        self.pipeline = VoicePipeline(
            leg_id="leg-1",
            stt=PocketsphinxSTT(),
            tts=self.tts,
            on_turn=self.reply,
            record=self.sink,
            vocabulary=VOCABULARY,
        )
        self.leg = WebRtcLeg(self.pipeline, conversation_id="conv-1")
        self.bridges = CallBridges({self.leg.leg_id: self.leg})
        self.visitor = BrowserPeer()
        self.operator = BrowserPeer()

    async def reply(self, turn: VisitorTurn) -> str:
        self.turns.append(turn)
        return f"You said {turn.text}."

    async def speech(self, text: str) -> bytes:
        return silence(300) + await self.tts.synthesize(text, RATE)


@pytest.fixture
async def call() -> AsyncIterator[Call]:
    c = Call()
    yield c
    await c.bridges.leave("conv-1")
    await c.visitor.close()
    await c.operator.close()
    await c.leg.close("test_end")


async def test_operator_and_visitor_hear_each_other_and_the_ai_steps_out(call: Call) -> None:
    answer = await call.leg.accept(await call.visitor.offer(), "offer", "Hello.")
    await call.visitor.answer(answer)
    await call.sink.wait_for("AgentSpoke")
    await eventually(lambda: call.leg.inbound is not None)
    with pytest.raises(CallNotBridgeableError):
        await call.bridges.join("another-conversation", "alice", "", "offer")

    leg_id, answer = await call.bridges.join(
        "conv-1", "alice", await call.operator.offer(), "offer"
    )
    assert leg_id == "leg-1"
    assert call.pipeline.held  # not even a repeat prompt from the AI while alice is on
    await call.operator.answer(answer)
    bob = BrowserPeer()
    with pytest.raises(CallNotBridgeableError):  # one person per call
        await call.bridges.join("conv-1", "bob", await bob.offer(), "offer")
    await bob.close()
    await eventually(lambda: len(call.operator.heard) > 10, within=15)
    await asyncio.sleep(1.0)  # the visitor's "Hello." has ended; what follows is the operator
    heard_before = call.visitor.loud_frames()

    # The operator speaks: the visitor hears them (audio through the bridge, not silence).
    call.operator.mic.play(await call.speech("This is Alice from the claims team"))
    await eventually(lambda: call.visitor.loud_frames() > heard_before + 25, within=15)
    # ... and what they said is transcribed onto the stream as the operator's turn.
    [said] = await call.sink.wait_for("UtteranceTranscribed", within=20)
    operator_turn = next(e for e in call.sink.events if e.type == "UtteranceTranscribed")
    assert said.role == "operator"
    assert operator_turn.actor == "operator:alice"
    assert operator_turn.leg_id == "leg-1"
    # Only what the recogniser heard (pocketsphinx, tuned to the visitor's vocabulary, gets
    # few of these words right; the record says what it returned, not what was meant).
    assert said.text.strip()
    assert 0.0 <= said.confidence <= 1.0
    assert said.end_ms > said.start_ms

    # The visitor speaks: the operator hears it; it is transcribed onto the stream, and the
    # AI does not answer.
    assert call.operator.loud_frames() == 0
    call.visitor.mic.play(await call.speech("It was for water damage in the kitchen"))
    await eventually(lambda: call.operator.loud_frames() > 25, within=15)
    _, utterance = await call.sink.wait_for("UtteranceTranscribed", 2, within=20)
    assert utterance.role == "visitor"
    assert "water damage" in utterance.text
    assert (said.model, said.low_confidence) == (utterance.model, said.low_confidence)
    await asyncio.sleep(1.5)
    assert call.turns == []
    assert len(call.sink.of_type("AgentSpoke")) == 1

    # The operator leaves: the AI is back on the call and answers the next turn.
    bridge = call.bridges.bridged("conv-1")
    assert bridge is not None
    assert bridge.listener is not None
    listener = bridge.listener
    call.operator.mic.play(await call.speech("I will hand you back to the assistant"))
    await eventually(lambda: listener.vad.in_speech, within=10)  # type: ignore[attr-defined]
    await asyncio.sleep(0.8)
    left = await call.bridges.leave("conv-1")  # while they are still speaking
    assert left == ("leg-1", "alice")
    assert not call.pipeline.held
    # Their last words were transcribed before leaving returned (so before OperatorLeftCall).
    heard = call.sink.of_type("UtteranceTranscribed")
    assert [u.role for u in heard] == ["operator", "visitor", "operator"], heard
    assert call.bridges.bridged("conv-1") is None
    assert await call.bridges.leave("conv-1") is None
    call.visitor.mic.play(await call.speech("It was for water damage in the kitchen"))
    spoken = await call.sink.wait_for("AgentSpoke", 2, within=25)
    assert spoken[1].text.startswith("You said")
    assert len(call.turns) == 1


async def test_the_ais_cut_words_are_recorded_before_the_join_returns(call: Call) -> None:
    """The console records OperatorJoinedCall once `join` returns: the AI's greeting, cut by
    the join, must already be on the stream then, or it would land after the join."""
    greeting = "Hello, thanks for calling. " * 6  # several seconds: still playing at the join
    answer = await call.leg.accept(await call.visitor.offer(), "offer", greeting)
    await call.visitor.answer(answer)
    await eventually(lambda: call.leg.inbound is not None and call.pipeline.playback.active)
    await eventually(lambda: call.pipeline.playback.speech_frames_out > 10, within=15)
    await call.bridges.join("conv-1", "alice", await call.operator.offer(), "offer")
    [cut] = call.sink.of_type("AgentSpoke")  # no waiting: recorded before join returned
    assert cut.interrupted is True
    assert cut.first_audio_at is not None
    assert not call.pipeline.playback.active
