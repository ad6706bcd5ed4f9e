"""Word error rate of the offline recogniser (faster-whisper, packaged tiny.en) on a held-in
set of 96 utterances synthesised at test time: 12 sentences (6 said in the chat, 6 never
said) × 8 conditions (harness/voice_wer.py: piper at three speeds, with and without noise,
16 and 8 kHz; the espeak-ng fallback's default voice at 16 and 8 kHz and faster with noise;
espeak-ng as it was before session 8 at 16 and 8 kHz, the same-run baseline). The recogniser
is biased with the chat's vocabulary, as on a live leg. The 8 kHz rows are decoded as on a
phone leg: through the PSTN channel's Upsampler2x to 16 kHz, then the recogniser with the
phone beam (`providers.phone_stt`, `THREADLINE_WHISPER_PHONE_BEAM_SIZE`); 16 kHz rows greedy,
as on a WebRTC leg.

Goals (issue 15): WER ≤ 0.10 on clean 16 kHz, ≤ 0.20 at 8 kHz, and no chat phrase ever
recorded for a sentence that was not that phrase. The espeak-ng default was tuned on other
sentences (benchmarks/espeak_grid.py), never on these. The audio is cached under a tmp dir
for the session. One module, one model load: ~2 min on 2 cores (see the report it prints).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable

import numpy as np
import pytest

from harness.voice_wer import CHAT, CONDITIONS, UNSEEN, VOCABULARY, edit_distance, synthesise, words
from threadline.channels.pstn.audio import Upsampler2x
from threadline.channels.voice.audio_av import resample
from threadline.channels.voice.providers import phone_stt
from threadline.channels.voice.settings import VoiceSettings
from threadline.channels.voice.stt_whisper import WhisperSTT
from threadline.channels.voice.tts_piper import PiperTTS

# 96 decodes of a 30 s window: ~2 min idle, 5+ min at load 15 on the 2 shared cores.
pytestmark = [pytest.mark.voice, pytest.mark.anyio, pytest.mark.timeout(1200)]


# None: reported, not asserted (the espeak-ng settings before session 8, the baseline).
# The espeak-ng fallback (en-us+klatt2, 130 wpm, 20 ms word gap) meets the 16 kHz goal
# (measured 0.054; before 0.207 in the same run) and, decoded as a phone leg (beam 5), the
# 8 kHz one: 0.185 (0.228 greedy through libswresample). The faster-with-noise bound (0.304
# measured) only guards against regressions. Piper at 8 kHz: 0.076 with the phone beam
# (0.033-0.043 greedy, earlier runs): the beam costs piper words, hence phone legs only.
GOALS: dict[str, float | None] = {
    "piper 16k": 0.10,
    "piper slow 16k noise 20dB": 0.20,
    "piper fast 8k": 0.20,
    "espeak 16k": 0.10,
    "espeak 8k": 0.20,
    "espeak fast 16k noise 20dB": 0.40,
    "espeak before 16k": None,
    "espeak before 8k": None,
}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


async def test_word_error_rate_on_chat_and_unseen_sentences(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is needed for half of the held-in set (scripts/sysdeps.sh)")
    cache = tmp_path_factory.mktemp("wer-audio")
    stt = WhisperSTT()
    phone = phone_stt(stt, VoiceSettings())
    piper: dict[float, PiperTTS] = {}
    chat_phrases = {" ".join(words(c)) for c in CHAT}
    errors: dict[str, int] = {}
    totals: dict[str, int] = {}
    substitutions: list[str] = []
    started = time.monotonic()
    decode_s = audio_s = 0.0
    count = 0
    for condition in CONDITIONS:
        for index, text in enumerate(CHAT + UNSEEN):
            path = cache / f"{condition.name.replace(' ', '_')}-{index}.pcm"
            if not path.exists():
                path.write_bytes(await synthesise(condition, text, piper))
            pcm = path.read_bytes()
            t0 = time.monotonic()
            if condition.rate == 8_000:  # the phone leg's own path
                heard = await phone.transcribe(Upsampler2x()(pcm), 16_000, VOCABULARY)
            else:
                heard = await stt.transcribe(pcm, condition.rate, VOCABULARY)
            decode_s += time.monotonic() - t0
            audio_s += len(pcm) / 2 / condition.rate
            count += 1
            ref, hyp = words(text), words(heard.text)
            errors[condition.name] = errors.get(condition.name, 0) + edit_distance(ref, hyp)
            totals[condition.name] = totals.get(condition.name, 0) + len(ref)
            if " ".join(hyp) in chat_phrases and hyp != ref:
                substitutions.append(f"{text!r} → {heard.text!r}")
            assert heard.model == "whisper-tiny.en-ct2-int8"
            assert heard.duration_ms is not None
            assert heard.duration_ms > 0
    wer: Callable[[str], float] = lambda name: errors[name] / totals[name]  # noqa: E731
    report = "  ".join(f"{c.name}: {wer(c.name):.3f}" for c in CONDITIONS)
    current = [c.name for c in CONDITIONS if GOALS[c.name] is not None]
    aggregate = {
        "all": sum(errors.values()) / sum(totals.values()),
        "current": sum(errors[n] for n in current) / sum(totals[n] for n in current),
    }
    print(
        f"\nWER over {count} utterances ({time.monotonic() - started:.0f} s, "
        f"decode RTF {decode_s / audio_s:.2f}): {report}\naggregate over every condition "
        f"{aggregate['all']:.3f}, over the current voices only {aggregate['current']:.3f}"
    )
    assert count >= 60
    assert substitutions == []
    for condition in CONDITIONS:
        goal = GOALS[condition.name]
        if goal is not None:
            assert wer(condition.name) <= goal, report


def test_resampling_8k_keeps_duration() -> None:
    pcm = (np.sin(np.arange(8000) / 8000 * 2 * np.pi * 300) * 8000).astype("<i2").tobytes()
    assert abs(len(resample(pcm, 8_000, 16_000)) - 2 * len(pcm)) <= 64
