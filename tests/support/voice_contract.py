"""Contract suites every SpeechToText / TextToSpeech implementation must pass.

Subclass per implementation and provide the `stt` / `tts` fixture (see
tests/integration/voice/test_voice_providers.py). Phrases are synthesised with espeak-ng.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from harness.voice_phrases import CHAT, SPOKEN
from threadline.channels.voice.ports import SpeechToText, TextToSpeech
from threadline.channels.voice.tts_espeak import EspeakTTS
from threadline.channels.voice.vocabulary import build_vocabulary, normalize

VOCABULARY = build_vocabulary(CHAT, ["January claim", "water damage"])


# The voice the tests' simulated visitors speak with: espeak-ng as it was through session 7.
# The wave-1 pocketsphinx tests were calibrated on it; the fallback TTS's own default
# (tts_espeak.DEFAULT_VOICE) is chosen for whisper and measured by the WER set.
def visitor_voice(words_per_minute: int = 165) -> EspeakTTS:
    return EspeakTTS("en-us", words_per_minute, pitch=50, word_gap=0, amplitude=100)


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples * samples))) if samples.size else 0.0


class SpeechToTextContract:
    @pytest.fixture
    def stt(self) -> SpeechToText:
        raise NotImplementedError

    @pytest.mark.parametrize("text", SPOKEN)
    async def test_vocabulary_speech_is_transcribed_exactly(
        self, stt: SpeechToText, text: str
    ) -> None:
        pcm = await visitor_voice().synthesize(text, 16_000)
        transcript = await stt.transcribe(pcm, 16_000, VOCABULARY)
        assert transcript.text == normalize(text)
        assert 0.5 <= transcript.confidence <= 1.0

    async def test_any_input_rate_is_accepted(self, stt: SpeechToText) -> None:
        pcm = await visitor_voice().synthesize("water damage", 48_000)
        assert (await stt.transcribe(pcm, 48_000, VOCABULARY)).text == "water damage"

    async def test_silence_is_nothing(self, stt: SpeechToText) -> None:
        transcript = await stt.transcribe(bytes(16_000 * 2), 16_000, VOCABULARY)
        assert transcript.text == ""
        assert transcript.confidence == 0.0

    async def test_decoding_does_not_block_the_event_loop(self, stt: SpeechToText) -> None:
        pcm = await visitor_voice().synthesize(SPOKEN[0], 16_000)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0)
                ticks += 1

        task = asyncio.ensure_future(ticker())
        await asyncio.sleep(0)
        before = ticks
        await stt.transcribe(pcm + pcm + pcm, 16_000, VOCABULARY)
        task.cancel()
        assert ticks - before > 1  # the loop ran other tasks while decoding


class TextToSpeechContract:
    @pytest.fixture
    def tts(self) -> TextToSpeech:
        raise NotImplementedError

    @pytest.mark.parametrize("rate", [16_000, 48_000])
    async def test_speech_comes_at_the_requested_rate(self, tts: TextToSpeech, rate: int) -> None:
        pcm = await tts.synthesize("Let me pull up your January claim.", rate)
        seconds = len(pcm) / 2 / rate
        assert len(pcm) % 2 == 0
        assert 1.0 < seconds < 6.0
        assert rms(pcm) > 500  # audible speech, not silence

    async def test_longer_text_is_longer_audio(self, tts: TextToSpeech) -> None:
        short = await tts.synthesize("Yes.", 16_000)
        long = await tts.synthesize("Yes, I can see the claim and the three documents.", 16_000)
        assert len(long) > 2 * len(short)

    async def test_blank_text_is_no_audio(self, tts: TextToSpeech) -> None:
        assert await tts.synthesize("   ", 16_000) == b""

    async def test_text_is_not_interpreted_as_options_or_markup(self, tts: TextToSpeech) -> None:
        pcm = await tts.synthesize("--help -w /tmp/x.wav", 16_000)
        assert rms(pcm) > 500
