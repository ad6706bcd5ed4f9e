"""Issue 15 pipeline behaviour with fakes: low-confidence turns, sentence streaming,
first-audio timing, and refusing a leg before its token is redeemed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from harness.voice import RecordingSink, eventually
from tests.unit.voice.test_voice_pipeline import FakeTTS, play_out, quiet, tone
from threadline.channels.voice.errors import ProviderUnavailableError
from threadline.channels.voice.pipeline import VoicePipeline
from threadline.channels.voice.ports import Transcript, VisitorTurn, Vocabulary
from threadline.channels.voice.providers import unavailable
from threadline.channels.voice.sessions import VoiceSessions
from threadline.channels.voice.settings import VoiceSettings
from threadline.channels.voice.stt_whisper import prompt_for
from threadline.channels.voice.tts_piper import split_sentences

pytestmark = pytest.mark.anyio


class DoubtfulSTT:
    name = "doubtful"

    async def transcribe(
        self, pcm: bytes, sample_rate: int, vocabulary: Vocabulary | None = None
    ) -> Transcript:
        return Transcript("has my order", 0.2, "m1", 600, -1.6, 0.1, low_confidence=True)


class StreamingTTS(FakeTTS):
    def __init__(self) -> None:
        self.sentences: list[str] = []

    async def synthesize_sentences(
        self, text: str, sample_rate: int
    ) -> AsyncIterator[tuple[str, bytes]]:
        for sentence in split_sentences(text):
            self.sentences.append(sentence)
            yield sentence, await self.synthesize(sentence, sample_rate)


def pipeline(stt: Any, tts: Any, replies: list[str]) -> tuple[VoicePipeline, RecordingSink]:
    sink = RecordingSink()
    turns: list[VisitorTurn] = []

    async def on_turn(turn: VisitorTurn) -> str | None:
        turns.append(turn)
        return replies.pop(0) if replies else None

    p = VoicePipeline(leg_id="L", stt=stt, tts=tts, on_turn=on_turn, record=sink)
    p.start()
    return p, sink


async def test_a_low_confidence_turn_is_recorded_as_heard_and_the_visitor_is_asked_again() -> None:
    replies = ["the agent must not answer a doubtful turn"]
    p, sink = pipeline(DoubtfulSTT(), FakeTTS(), replies)
    p.push_audio(quiet(400) + tone(600) + quiet(700))
    [heard] = await sink.wait_for("UtteranceTranscribed")
    assert (heard.text, heard.low_confidence, heard.model) == ("has my order", True, "m1")
    assert (heard.avg_logprob, heard.no_speech_prob, heard.duration_ms) == (-1.6, 0.1, 600)
    await eventually(lambda: p.playback.active)
    play_out(p)
    [spoken] = await sink.wait_for("AgentSpoke")
    assert spoken.text == p.repeat_prompt
    assert replies == ["the agent must not answer a doubtful turn"]  # never reached
    await p.close("visitor_hangup")


async def test_a_reply_plays_from_its_first_sentence_and_records_when_audio_started() -> None:
    tts = StreamingTTS()
    p, sink = pipeline(DoubtfulSTT(), tts, [])
    before = datetime.now(UTC)
    await p.say("First one. Second one is longer!")
    assert tts.sentences == ["First one.", "Second one is longer!"]
    assert p.playback.active
    play_out(p)
    [spoken] = await sink.wait_for("AgentSpoke")
    assert (spoken.text, spoken.interrupted) == ("First one. Second one is longer!", False)
    assert spoken.first_audio_at is not None
    assert spoken.first_audio_at >= before
    await p.close("visitor_hangup")


async def test_a_reply_cut_before_any_audio_has_no_first_audio_and_nothing_spoken() -> None:
    p, sink = pipeline(DoubtfulSTT(), FakeTTS(), [])
    await p.say("Hello there.")
    p.push_audio(tone(400))  # barge-in before the transport pulled a frame
    [cut] = await sink.wait_for("AgentSpoke")
    assert (cut.interrupted, cut.spoken_text, cut.first_audio_at) == (True, "", None)
    await p.close("visitor_hangup")


def test_the_context_biases_whisper_through_a_prompt_and_hotwords() -> None:
    vocabulary = Vocabulary(("has my order shipped", "yes"), ("order", "acme", "order"))
    prompt, hotwords = prompt_for(vocabulary)
    assert prompt == "Has my order shipped yes."
    assert hotwords == "order acme"
    assert prompt_for(None) == (None, None)


class MissingProvider:
    name = "missing"

    def check(self) -> None:
        raise ProviderUnavailableError("model not installed")

    async def synthesize(self, text: str, sample_rate: int) -> bytes:
        raise AssertionError("never used")


class CountingRedeemer:
    def __init__(self) -> None:
        self.calls = 0

    def redeem(self, token: str, transport_ref: str | None = None, **kwargs: Any) -> Any:
        self.calls += 1
        raise AssertionError("a leg with no provider must not redeem its token")


def test_unavailable_names_each_missing_provider_in_one_line() -> None:
    assert unavailable(FakeTTS()) is None
    assert unavailable(MissingProvider(), FakeTTS()) == "missing: model not installed"


async def test_a_leg_is_refused_before_its_token_is_redeemed_when_a_provider_is_missing() -> None:
    redeemer = CountingRedeemer()
    sessions = VoiceSessions(
        ledger=None,  # type: ignore[arg-type]
        handoffs=redeemer,
        settings=VoiceSettings(),
        stt=DoubtfulSTT(),
        tts=MissingProvider(),  # type: ignore[arg-type]
    )
    assert sessions.unavailable == "missing: model not installed"
    with pytest.raises(ProviderUnavailableError, match="voice is unavailable"):
        await sessions.open("token", "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "offer")
    assert redeemer.calls == 0


def test_a_long_first_sentence_is_cut_at_a_clause_so_audio_starts_sooner() -> None:
    text = "Thanks for switching to voice, I see you were asking about your claim today. Ok?"
    assert split_sentences(text) == [
        "Thanks for switching to voice,",
        "I see you were asking about your claim today.",
        "Ok?",
    ]
    assert split_sentences("Short one, really. Next.") == ["Short one, really.", "Next."]


class FailingAfterFirstTTS(StreamingTTS):
    async def synthesize_sentences(
        self, text: str, sample_rate: int
    ) -> AsyncIterator[tuple[str, bytes]]:
        first, *_ = split_sentences(text)
        yield first, await self.synthesize(first, sample_rate)
        raise RuntimeError("synthesis died mid-reply")


async def test_a_synthesis_failing_after_the_first_sentence_records_only_what_was_played() -> None:
    p, sink = pipeline(DoubtfulSTT(), FailingAfterFirstTTS(), [])
    await p.say("Your order shipped. It arrives on Friday.")
    play_out(p)
    [spoken] = await sink.wait_for("AgentSpoke")
    assert spoken.text == "Your order shipped. It arrives on Friday."
    assert (spoken.spoken_text, spoken.interrupted) == ("Your order shipped.", True)
    assert any("synthesis died" in error for error in p.stats.errors)
    await p.close("visitor_hangup")
