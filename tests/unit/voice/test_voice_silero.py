"""Silero VAD (ONNX, no torch) on synthesised speech and on noise."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from threadline.channels.voice.ports import SpeechEnded, SpeechStarted
from threadline.channels.voice.vad import EnergyVad

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def speech() -> bytes:
    from threadline.channels.voice.tts_piper import PiperTTS

    return asyncio.run(PiperTTS().synthesize("has my order shipped yet", 16_000))


def test_silero_finds_speech_and_ignores_noise_that_opens_an_energy_turn(speech: bytes) -> None:
    from threadline.channels.voice.vad_silero import SileroVad

    silence = bytes(16_000)
    events = SileroVad().feed(silence + speech + silence * 2)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    ended = events[1]
    assert isinstance(ended, SpeechEnded)
    assert 200 <= ended.start_ms <= 1100
    assert ended.end_ms - ended.start_ms >= len(speech) * 1000 // 32_000 - 400

    noise = np.random.default_rng(7).normal(0, 3000, 48_000).astype("<i2").tobytes()
    assert SileroVad().feed(noise + silence) == []
    assert [type(e) for e in EnergyVad().feed(noise + silence * 2)] == [SpeechStarted, SpeechEnded]
