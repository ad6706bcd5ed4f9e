"""Pipeline, VAD, playback and vocabulary logic with fake providers and scripted PCM."""

from __future__ import annotations

import math
import struct

import pytest

from harness.voice import RecordingSink, eventually
from threadline.channels.voice.errors import SpeechToTextError
from threadline.channels.voice.pipeline import VoicePipeline
from threadline.channels.voice.playback import spoken_prefix
from threadline.channels.voice.ports import (
    SpeechEnded,
    SpeechStarted,
    Transcript,
    VisitorTurn,
    Vocabulary,
)
from threadline.channels.voice.vad import EnergyVad, rms_dbfs
from threadline.channels.voice.vocabulary import build_vocabulary, normalize, number_words

pytestmark = pytest.mark.anyio
RATE = 16_000


def tone(ms: int, amplitude: int = 6000) -> bytes:
    n = RATE * ms // 1000
    return b"".join(
        struct.pack("<h", int(amplitude * math.sin(2 * math.pi * 300 * i / RATE))) for i in range(n)
    )


def quiet(ms: int) -> bytes:
    return bytes(RATE * ms // 1000 * 2)


class FakeSTT:
    name = "fake"

    def __init__(self) -> None:
        self.calls: list[tuple[int, Vocabulary | None]] = []
        self.fail_next = False

    async def transcribe(
        self, pcm: bytes, sample_rate: int, vocabulary: Vocabulary | None = None
    ) -> Transcript:
        self.calls.append((len(pcm), vocabulary))
        if self.fail_next:
            self.fail_next = False
            raise SpeechToTextError("decoder exploded")
        return Transcript(f"utterance {len(self.calls)}", 0.8)


class FakeTTS:
    """10 ms of tone per character."""

    name = "fake"

    async def synthesize(self, text: str, sample_rate: int) -> bytes:
        return b"\x10\x10" * (sample_rate // 100) * len(text)


def make(reply: str | None = "ok", **kwargs: object) -> tuple[VoicePipeline, RecordingSink]:
    sink = RecordingSink()

    async def on_turn(turn: VisitorTurn) -> str | None:
        return reply

    pipeline = VoicePipeline(
        leg_id="L",
        stt=FakeSTT(),
        tts=FakeTTS(),
        on_turn=on_turn,
        record=sink,
        vocabulary=Vocabulary(phrases=("water damage",)),
        **kwargs,  # type: ignore[arg-type]
    )
    pipeline.start()
    return pipeline, sink


def play_out(pipeline: VoicePipeline, frames: int = 10_000) -> None:
    for _ in range(frames):
        pipeline.next_frame()
        if not pipeline.playback.active:
            return


# -- VAD ---------------------------------------------------------------------------------


def test_vad_finds_one_utterance_with_media_clock_times() -> None:
    vad = EnergyVad(RATE)
    events = vad.feed(quiet(1000) + tone(800) + quiet(1000))
    assert isinstance(events[0], SpeechStarted)
    ended = events[1]
    assert isinstance(ended, SpeechEnded)
    assert ended.start_ms == 1000 - 200  # 200 ms pre-roll before the first voiced frame
    assert 1800 <= ended.end_ms <= 2000
    assert len(ended.pcm) >= RATE * 2 * 800 // 1000


def test_vad_ignores_clicks_and_quiet_noise() -> None:
    vad = EnergyVad(RATE)
    assert vad.feed(quiet(500) + tone(40) + quiet(1000)) == []
    assert vad.feed(tone(2000, amplitude=50)) == []  # about -56 dBFS


def test_vad_bridges_pauses_between_words_and_accepts_any_chunking() -> None:
    audio = tone(300) + quiet(300) + tone(300) + quiet(1000)
    whole = EnergyVad(RATE).feed(audio)
    vad = EnergyVad(RATE)
    pieces = [e for i in range(0, len(audio), 333) for e in vad.feed(audio[i : i + 333])]
    assert [type(e) for e in whole] == [SpeechStarted, SpeechEnded]
    assert pieces == whole


def test_vad_flush_ends_a_pending_utterance() -> None:
    vad = EnergyVad(RATE)
    vad.feed(tone(500))
    [ended] = vad.flush()
    assert isinstance(ended, SpeechEnded)
    assert vad.flush() == []


def test_rms_dbfs() -> None:
    assert rms_dbfs(quiet(20)) == -math.inf
    assert -4 < rms_dbfs(tone(20, 32767)) < -2


# -- spoken prefix ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fraction", "spoken"),
    [
        (0.0, ""),
        (0.02, ""),
        (0.1, "I"),
        (0.25, "I see"),
        (0.55, "I see you were"),
        (0.999, "I see you were asking about"),
        (1.0, "I see you were asking about it."),
    ],
)
def test_spoken_prefix_counts_only_fully_played_words(fraction: float, spoken: str) -> None:
    assert spoken_prefix("I see you were asking about it.", fraction) == spoken


# -- vocabulary ---------------------------------------------------------------------------


def test_numbers_are_spelled_as_read() -> None:
    assert number_words("7") == ["seven"]
    assert number_words("42") == ["forty", "two"]
    assert number_words("250") == ["two", "hundred", "fifty"]
    assert number_words("2024") == ["twenty", "twenty", "four"]
    assert number_words("48213") == ["four", "eight", "two", "one", "three"]
    assert number_words("007") == ["zero", "zero", "seven"]
    assert normalize("Claim #48213, from January!") == "claim four eight two one three from january"


def test_vocabulary_comes_from_the_conversation_context() -> None:
    vocabulary = build_vocabulary(
        ["Hi. I have a question about my January claim", "It was water damage."],
        ["January claim", "ACME Insurance"],
    )
    assert "i have a question about my january claim" in vocabulary.phrases
    assert "it was water damage" in vocabulary.phrases
    assert "about my january claim" in vocabulary.phrases
    assert "my acme insurance" in vocabulary.phrases
    assert "yes" in vocabulary.phrases
    assert set(vocabulary.words) >= {"january", "claim", "acme", "insurance"}
    assert len(set(vocabulary.phrases)) == len(vocabulary.phrases)
    assert not build_vocabulary(include_common=False)


# -- pipeline -----------------------------------------------------------------------------


async def test_a_visitor_turn_is_transcribed_answered_and_recorded_in_order() -> None:
    pipeline, sink = make(reply="Got it.")
    pipeline.push_audio(quiet(400) + tone(600) + quiet(700))
    [utterance] = await sink.wait_for("UtteranceTranscribed")
    assert (utterance.role, utterance.text, utterance.confidence) == ("visitor", "utterance 1", 0.8)
    assert utterance.start_ms == 200
    await eventually(lambda: pipeline.playback.active)
    play_out(pipeline)
    [spoken] = await sink.wait_for("AgentSpoke")
    assert (spoken.text, spoken.interrupted, spoken.spoken_text) == ("Got it.", False, "Got it.")
    assert pipeline.stt.calls[0][1] == Vocabulary(phrases=("water damage",))  # type: ignore[attr-defined]
    await pipeline.close("visitor_hangup")
    assert [e.type for e in sink.events] == ["UtteranceTranscribed", "AgentSpoke", "LegClosed"]
    assert sink.events[-1].data.reason == "visitor_hangup"
    assert {e.leg_id for e in sink.events} == {"L"}


async def test_barge_in_stops_playback_and_records_the_words_played() -> None:
    pipeline, sink = make(reply=None)
    text = "one two three four five six seven eight nine ten"  # 48 chars = 480 ms of audio
    await pipeline.say(text)
    await pipeline.say("A second reply that never started.")
    for _ in range(12):  # 240 ms of 480 ms played
        pipeline.next_frame()
    pipeline.push_audio(tone(300))
    assert not pipeline.playback.active
    cut, never = await sink.wait_for("AgentSpoke", 2)
    assert cut.interrupted is True
    assert cut.spoken_text == spoken_prefix(text, 0.5) == "one two three four five"
    assert (never.interrupted, never.spoken_text) == (True, "")
    assert pipeline.stats.barge_ins == 1
    assert pipeline.next_frame() == bytes(1920)  # silence after the cut
    await pipeline.close("done")


async def test_speech_shorter_than_the_barge_in_threshold_does_not_cut() -> None:
    pipeline, _ = make(reply=None, barge_in_ms=400)
    await pipeline.say("a fairly long agent sentence that keeps going")
    pipeline.next_frame()
    pipeline.push_audio(tone(200) + quiet(700))
    assert pipeline.playback.active
    await pipeline.close("done")


async def test_errors_in_the_media_loop_are_data_not_crashes() -> None:
    pipeline, sink = make(reply="fine")
    pipeline.stt.fail_next = True  # type: ignore[attr-defined]
    pipeline.push_audio(tone(500) + quiet(700))
    pipeline.push_audio(tone(500) + quiet(700))
    [utterance] = await sink.wait_for("UtteranceTranscribed")
    assert utterance.text == "utterance 2"
    assert pipeline.stats.errors == ["stt: SpeechToTextError: decoder exploded"]

    async def failing_sink(event: object) -> None:
        raise RuntimeError("ledger down")

    pipeline._sink = failing_sink
    await pipeline.close("done")
    assert pipeline.stats.errors[-1].startswith("record LegClosed: RuntimeError")


async def test_closing_mid_utterance_still_transcribes_it_then_closes() -> None:
    pipeline, sink = make(reply="unheard")
    await pipeline.say("still talking")
    pipeline.next_frame()
    pipeline.push_audio(quiet(200) + tone(600))  # no end-of-speech silence yet
    await pipeline.close("peer_timeout")
    await pipeline.close("again")  # idempotent
    types = [e.type for e in sink.events]
    assert types == ["AgentSpoke", "UtteranceTranscribed", "LegClosed"]
    assert sink.events[0].data.interrupted is True
    assert sink.events[-1].data.reason == "peer_timeout"
    assert pipeline.playback.active is False


def frames(pcm: bytes) -> list[bytes]:
    size = RATE * 2 // 50
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


async def test_recognition_starts_at_the_pause_and_that_result_is_the_turn() -> None:
    pipeline, sink = make(reply=None)
    stt = pipeline.stt
    for frame in frames(quiet(200) + tone(600) + quiet(300)):
        pipeline.push_audio(frame)
    # 300 ms into the pause: the VAD (600 ms) has not ended the turn, the decode has begun.
    await eventually(lambda: len(stt.calls) == 1)  # type: ignore[attr-defined]
    assert sink.events == []
    for frame in frames(quiet(400)):
        pipeline.push_audio(frame)
    [utterance] = await sink.wait_for("UtteranceTranscribed")
    assert utterance.text == "utterance 1"
    assert len(stt.calls) == 1  # type: ignore[attr-defined]
    await pipeline.close("visitor_hangup")


async def test_an_early_result_is_dropped_when_the_visitor_speaks_on() -> None:
    pipeline, sink = make(reply=None)
    stt = pipeline.stt
    for frame in frames(tone(600) + quiet(300) + tone(400) + quiet(700)):
        pipeline.push_audio(frame)
    [utterance] = await sink.wait_for("UtteranceTranscribed")
    # The first pause's snapshot was superseded before its decode started (so it never ran);
    # the second pause's covers both parts and is the turn.
    [(decoded, _)] = stt.calls  # type: ignore[attr-defined]
    assert decoded >= RATE * 2 * (600 + 300 + 400) // 1000
    assert utterance.text == "utterance 1"
    await pipeline.close("visitor_hangup")
