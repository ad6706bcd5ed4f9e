"""The held-in sentences of the word-error-rate set (tests/integration/voice/test_voice_wer.py,
benchmarks/voice.py): six said in the chat, six never said, the
vocabulary a voice leg would be biased with, the conditions they are synthesised under and
the word-level edit distance."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from threadline.channels.voice.tts_espeak import EspeakTTS
from threadline.channels.voice.tts_piper import PiperTTS
from threadline.channels.voice.vocabulary import build_vocabulary

CHAT = [
    "I have a question about my order",
    "has my order shipped yet",
    "the parcel was supposed to arrive on Monday",
    "I would like to change the delivery address",
    "can I speak to a person please",
    "yes that is correct",
]
UNSEEN = [
    "could you also send me the confirmation by email please",
    "my neighbour took the package in by mistake",
    "what time does your warehouse close on Fridays",
    "I think the invoice shows the wrong amount",
    "please cancel the second item in my basket",
    "the blue jacket was too small so I sent it back",
]
VOCABULARY = build_vocabulary(CHAT, ["order", "parcel", "delivery address"])


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]+", " ", text.lower().replace("-", " ")).split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def with_noise(pcm: bytes, snr_db: float, seed: int) -> bytes:
    audio = np.frombuffer(pcm, "<i2").astype(np.float64)
    power = float(np.mean(audio * audio)) or 1.0
    noise = np.random.default_rng(seed).normal(0, np.sqrt(power / 10 ** (snr_db / 10)), audio.size)
    return np.clip(audio + noise, -32768, 32767).astype("<i2").tobytes()


@dataclass(frozen=True)
class Condition:
    name: str
    engine: str  # piper | espeak
    rate: int
    # piper: length_scale (> 1 slower); espeak: × the words per minute (> 1 faster)
    speed: float = 1.0
    snr_db: float | None = None
    # espeak only: None is the fallback provider's own default (`EspeakTTS()`)
    voice: str | None = None
    words_per_minute: int | None = None
    word_gap: int | None = None


# espeak-ng as it was before session 8 (`en-us`, 165 wpm, no word gap): the baseline rows.
BEFORE = {"voice": "en-us", "words_per_minute": 165, "word_gap": 0}

CONDITIONS = [
    Condition("piper 16k", "piper", 16_000),
    Condition("piper slow 16k noise 20dB", "piper", 16_000, speed=1.2, snr_db=20.0),
    Condition("piper fast 8k", "piper", 8_000, speed=0.85),
    Condition("espeak 16k", "espeak", 16_000),
    Condition("espeak 8k", "espeak", 8_000),
    Condition("espeak fast 16k noise 20dB", "espeak", 16_000, speed=1.15, snr_db=20.0),
    Condition("espeak before 16k", "espeak", 16_000, **BEFORE),  # type: ignore[arg-type]
    Condition("espeak before 8k", "espeak", 8_000, **BEFORE),  # type: ignore[arg-type]
]


def espeak_for(condition: Condition) -> EspeakTTS:
    tts = EspeakTTS()
    tts.voice = condition.voice or tts.voice
    tts.word_gap = tts.word_gap if condition.word_gap is None else condition.word_gap
    wpm = condition.words_per_minute or tts.words_per_minute
    tts.words_per_minute = round(wpm * condition.speed)
    return tts


async def synthesise(condition: Condition, text: str, piper: dict[float, PiperTTS]) -> bytes:
    if condition.engine == "piper":
        tts = piper.setdefault(condition.speed, PiperTTS(length_scale=condition.speed))
        pcm = await tts.synthesize(text, condition.rate)
    else:
        pcm = await espeak_for(condition).synthesize(text, condition.rate)
    if condition.snr_db is not None:
        pcm = with_noise(pcm, condition.snr_db, seed=len(text))
    # Phone audio is band-limited at 8 kHz (libswresample from the engine's 22.05 kHz, which
    # filters at the new Nyquist); the recogniser gets it at 8 kHz and upsamples it itself.
    return pcm
