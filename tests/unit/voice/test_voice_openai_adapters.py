"""The OpenAI adapters against a fake OpenAI-compatible server on loopback (no real
provider: these check what the adapters send and how they read the answers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_openai_audio import FakeAudioAPI, fake_openai_audio
from threadline.channels.voice.errors import SpeechToTextError, TextToSpeechError
from threadline.channels.voice.ports import SpeechToText, TextToSpeech, Vocabulary
from threadline.channels.voice.stt_openai import UNKNOWN_CONFIDENCE, OpenAISTT
from threadline.channels.voice.tts_openai import OpenAITTS

pytestmark = pytest.mark.anyio
KEY = "test-key-not-a-secret"


@pytest.fixture
def api() -> Iterator[FakeAudioAPI]:
    with fake_openai_audio() as fake:
        yield fake


async def test_stt_sends_a_wav_and_the_vocabulary_as_prompt(api: FakeAudioAPI) -> None:
    stt = OpenAISTT(base_url=api.base_url, api_key=KEY, model="whisper-x")
    assert isinstance(stt, SpeechToText)
    vocabulary = Vocabulary(phrases=("my january claim", "water damage"))
    transcript = await stt.transcribe(bytes(3200), 16_000, vocabulary)
    await stt.close()
    assert transcript.text == "water damage"
    assert transcript.confidence == pytest.approx(0.9048, abs=1e-3)  # exp(-0.1)
    [request] = api.requests
    assert request["path"] == "/v1/audio/transcriptions"
    assert request["authorization"] == f"Bearer {KEY}"
    assert request["model"] == "whisper-x"
    assert request["wav_rate"] == 16_000
    assert request["prompt"] == "my january claim, water damage"
    assert request["response_format"] == "verbose_json"


async def test_stt_without_segment_scores_reports_unknown_confidence(api: FakeAudioAPI) -> None:
    api.avg_logprob = None
    stt = OpenAISTT(base_url=api.base_url, api_key=KEY)
    transcript = await stt.transcribe(bytes(3200), 16_000)
    await stt.close()
    assert transcript.confidence == UNKNOWN_CONFIDENCE
    assert api.requests[0]["prompt"] is None


async def test_stt_server_errors_become_voice_errors_without_the_key(api: FakeAudioAPI) -> None:
    api.fail_with = 500
    stt = OpenAISTT(base_url=api.base_url, api_key=KEY)
    with pytest.raises(SpeechToTextError) as info:
        await stt.transcribe(bytes(3200), 16_000)
    await stt.close()
    assert KEY not in str(info.value)


async def test_tts_returns_pcm_at_the_requested_rate(api: FakeAudioAPI) -> None:
    tts = OpenAITTS(base_url=api.base_url, api_key=KEY, voice="nova")
    assert isinstance(tts, TextToSpeech)
    pcm = await tts.synthesize("one two three four five", 48_000)
    await tts.close()
    # the fake speaks 0.1 s per word at 24 kHz; resampled to 48 kHz that is 0.5 s
    assert abs(len(pcm) / 2 / 48_000 - 0.5) < 0.01
    [request] = api.requests
    assert request["path"] == "/v1/audio/speech"
    assert request["response_format"] == "pcm"
    assert request["voice"] == "nova"
    assert request["input"] == "one two three four five"


async def test_tts_blank_text_makes_no_request(api: FakeAudioAPI) -> None:
    tts = OpenAITTS(base_url=api.base_url, api_key=KEY)
    assert await tts.synthesize("  ", 48_000) == b""
    await tts.close()
    assert api.requests == []


async def test_tts_errors_become_voice_errors(api: FakeAudioAPI) -> None:
    api.fail_with = 401
    tts = OpenAITTS(base_url=api.base_url, api_key=KEY)
    with pytest.raises(TextToSpeechError):
        await tts.synthesize("hello", 48_000)
    await tts.close()
