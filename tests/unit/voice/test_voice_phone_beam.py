"""The phone-leg beam: one recogniser (one model, one executor), decoding with the phone beam on
PSTN legs and with its own (greedy) beam on WebRTC legs. No model is loaded here."""

from __future__ import annotations

import pytest

from threadline.channels.voice.ports import SpeechToText, Transcript, Vocabulary
from threadline.channels.voice.providers import phone_stt
from threadline.channels.voice.settings import VoiceSettings
from threadline.channels.voice.stt_whisper import WhisperBeamView, WhisperSTT

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeSTT:
    name = "fake"

    async def transcribe(
        self, pcm: bytes, sample_rate: int, vocabulary: Vocabulary | None = None
    ) -> Transcript:
        return Transcript("", 0.0)


def test_the_phone_view_shares_the_recogniser_and_only_changes_the_beam() -> None:
    stt = WhisperSTT()
    view = phone_stt(stt, VoiceSettings())
    assert isinstance(view, WhisperBeamView)
    assert isinstance(view, SpeechToText)
    assert (view.base, view.beam_size, view.model_id) == (stt, 5, stt.model_id)
    assert stt.beam_size == 1
    assert phone_stt(stt, VoiceSettings(whisper_phone_beam_size=1)) is stt


def test_providers_without_a_beam_are_used_as_is() -> None:
    fake = FakeSTT()
    assert phone_stt(fake, VoiceSettings()) is fake


async def test_each_view_decodes_with_its_own_beam(monkeypatch: pytest.MonkeyPatch) -> None:
    stt = WhisperSTT()
    beams: list[int] = []

    def decode(pcm: bytes, vocabulary: Vocabulary | None, beam_size: int) -> Transcript:
        beams.append(beam_size)
        return Transcript("hello", 1.0)

    monkeypatch.setattr(stt, "_decode", decode)
    pcm = bytes(3200)
    await stt.transcribe(pcm, 16_000)
    await phone_stt(stt, VoiceSettings()).transcribe(pcm, 16_000)
    await stt.with_beam(3).transcribe(pcm, 16_000)
    assert beams == [1, 5, 3]
