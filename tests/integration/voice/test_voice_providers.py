"""The offline providers against the STT/TTS contracts (real espeak-ng and pocketsphinx)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.voice_contract import SpeechToTextContract, TextToSpeechContract, visitor_voice
from threadline.channels.voice.ports import SpeechToText, TextToSpeech
from threadline.channels.voice.stt_pocketsphinx import PocketsphinxSTT
from threadline.channels.voice.tts_espeak import EspeakTTS

pytestmark = [pytest.mark.voice, pytest.mark.anyio]


@pytest.fixture(scope="module")
def pocketsphinx() -> Iterator[PocketsphinxSTT]:
    stt = PocketsphinxSTT()
    yield stt
    stt.close()


class TestPocketsphinx(SpeechToTextContract):
    @pytest.fixture
    def stt(self, pocketsphinx: PocketsphinxSTT) -> SpeechToText:
        return pocketsphinx

    async def test_speech_outside_the_vocabulary_falls_back_to_the_general_model(
        self, pocketsphinx: PocketsphinxSTT
    ) -> None:
        from tests.support.voice_contract import VOCABULARY

        tts = visitor_voice()
        pcm = await tts.synthesize("I was asking about my January claim", 16_000)
        transcript = await pocketsphinx.transcribe(pcm, 16_000, VOCABULARY)
        assert transcript.text  # something, flagged as low confidence
        assert transcript.confidence < 0.5


class TestEspeak(TextToSpeechContract):
    @pytest.fixture
    def tts(self) -> TextToSpeech:
        return EspeakTTS()
