"""A second speaker on a leg (the operator on a bridged call): the same VAD and recogniser as
the visitor's, recorded as the operator's UtteranceTranscribed with what the recogniser
returned, flagged when doubtful, flushed when they hang up mid-sentence; nobody answers."""

from __future__ import annotations

import pytest

from harness.voice import RecordingSink
from tests.unit.voice.test_voice_pipeline import quiet, tone
from threadline.channels.voice.listener import SpeechListener
from threadline.channels.voice.pipeline import VoicePipeline
from threadline.channels.voice.ports import Transcript, VisitorTurn, Vocabulary
from threadline.channels.voice.vad import EnergyVad, VadConfig
from threadline.ledger.events import UtteranceTranscribed

pytestmark = pytest.mark.anyio


class ScriptedSTT:
    """Returns the scripted transcripts in order (what a recogniser would have heard)."""

    name = "scripted"

    def __init__(self, *heard: Transcript) -> None:
        self.heard = list(heard)
        self.vocabularies: list[Vocabulary | None] = []

    async def transcribe(
        self, pcm: bytes, sample_rate: int, vocabulary: Vocabulary | None = None
    ) -> Transcript:
        self.vocabularies.append(vocabulary)
        return self.heard.pop(0)


class NoTTS:
    name = "none"

    async def synthesize(self, text: str, sample_rate: int) -> bytes:
        raise AssertionError("nobody answers the operator")


async def test_operator_speech_is_recorded_as_heard_and_never_answered() -> None:
    sink = RecordingSink()
    answered: list[VisitorTurn] = []

    async def on_turn(turn: VisitorTurn) -> str | None:
        answered.append(turn)
        return "no"

    stt = ScriptedSTT(
        Transcript("your claim was paid on the third", 0.91, model="m1", duration_ms=120),
        Transcript("", 0.0),  # a cough: nothing recorded
        Transcript("um maybe", 0.2, model="m1", low_confidence=True),
    )
    vocabulary = Vocabulary(phrases=("January claim",))
    config = VadConfig(end_silence_ms=400)
    pipeline = VoicePipeline(
        leg_id="L",
        stt=stt,
        tts=NoTTS(),
        on_turn=on_turn,
        record=sink,
        vocabulary=vocabulary,
        new_vad=lambda: EnergyVad(config=config),
    )
    pipeline.start()
    pipeline.push_audio(quiet(1000))  # the visitor's leg has run a second before the join
    listener = SpeechListener(pipeline, role="operator", actor="operator:alice")
    listener.push_audio(quiet(200) + tone(600) + quiet(500) + tone(300) + quiet(500))
    listener.push_audio(tone(400))  # hangs up mid-word: flushed by close
    await listener.close()

    events = [e for e in sink.events if e.type == "UtteranceTranscribed"]
    heard = [e.data for e in events if isinstance(e.data, UtteranceTranscribed)]
    assert [(u.text, u.low_confidence) for u in heard] == [
        ("your claim was paid on the third", False),
        ("um maybe", True),
    ]
    first = heard[0]
    assert (first.role, events[0].actor, events[0].leg_id) == ("operator", "operator:alice", "L")
    assert (first.model, first.duration_ms, first.confidence) == ("m1", 120, 0.91)
    assert first.start_ms == 1000  # on the leg's clock, not the operator track's
    assert stt.vocabularies == [vocabulary] * 3
    assert answered == []
    assert pipeline.stats.agent_turns == 0
    await pipeline.close("test_end")
