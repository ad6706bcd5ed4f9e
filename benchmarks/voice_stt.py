"""Whisper encoder window: `python -m benchmarks.voice_stt [--pads 1000,2000] [--rounds 2]`.

Decodes the held-in WER set (harness/voice_wer.py: 12 sentences × 5 conditions, piper and
espeak-ng, 16 and 8 kHz) with the full 30 s encoder window (the same-run baseline) and with
the window cut to the utterance plus each pad (`WhisperSTT(window_pad_ms=…)`), utterance by
utterance in alternation so load drift hits every setting alike. Reports, per setting, the
WER of each condition, chat-phrase substitutions and the decode time (median per utterance,
and real-time factor). One model, one worker thread: the settings share it.
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import Figure, emit  # noqa: E402
from harness.voice_wer import (  # noqa: E402
    CHAT,
    CONDITIONS,
    UNSEEN,
    VOCABULARY,
    edit_distance,
    synthesise,
    words,
)


async def run(pads: list[int | None], rounds: int) -> dict[str, dict[str, float]]:
    from threadline.channels.voice.stt_whisper import WhisperSTT
    from threadline.channels.voice.tts_piper import PiperTTS

    base = WhisperSTT()
    await base.warm_up()
    models = {pad: base if pad is None else WhisperSTT(window_pad_ms=pad) for pad in pads}
    for pad, stt in models.items():  # one loaded model shared (same weights, same thread)
        if pad is not None:
            stt._model, stt._executor = base._model, base._executor
    piper: dict[float, PiperTTS] = {}
    clips: list[tuple[str, str, bytes, int]] = []
    with tempfile.TemporaryDirectory():
        for condition in CONDITIONS:
            for text in CHAT + UNSEEN:
                pcm = await synthesise(condition, text, piper)
                clips.append((condition.name, text, pcm, condition.rate))
    chat = {" ".join(words(c)) for c in CHAT}
    errors: dict[tuple[int | None, str], int] = {}
    totals: dict[str, int] = {}
    subs: dict[int | None, int] = dict.fromkeys(pads, 0)
    times: dict[int | None, list[float]] = {pad: [] for pad in pads}
    audio_s = 0.0
    for r in range(rounds):
        for name, text, pcm, rate in clips:
            ref = words(text)
            if r == 0:
                totals[name] = totals.get(name, 0) + len(ref)
                audio_s += len(pcm) / 2 / rate
            for pad in pads if r % 2 == 0 else list(reversed(pads)):
                t0 = time.perf_counter()
                heard = await models[pad].transcribe(pcm, rate, VOCABULARY)
                times[pad].append(time.perf_counter() - t0)
                if r == 0:
                    hyp = words(heard.text)
                    errors[(pad, name)] = errors.get((pad, name), 0) + edit_distance(ref, hyp)
                    subs[pad] += int(" ".join(hyp) in chat and hyp != ref)
    out: dict[str, dict[str, float]] = {}
    for pad in pads:
        label = "full 30 s" if pad is None else f"utterance + {pad} ms"
        row = {c.name: errors[(pad, c.name)] / totals[c.name] for c in CONDITIONS}
        row["substitutions"] = subs[pad]
        row["decode_p50_s"] = statistics.median(times[pad])
        row["rtf"] = sum(times[pad]) / (audio_s * rounds)
        out[label] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pads", default="1000,2000", help="pads in ms, comma-separated")
    parser.add_argument("--rounds", type=int, default=2, help="decodes of each clip per setting")
    args = parser.parse_args()
    pads: list[int | None] = [None, *(int(p) for p in args.pads.split(",") if p)]
    load0 = os.getloadavg()[0]
    results = asyncio.run(run(pads, args.rounds))
    load1 = os.getloadavg()[0]
    for label, row in results.items():
        wer = "  ".join(f"{c.name}: {row[c.name]:.3f}" for c in CONDITIONS)
        print(
            f"{label:>22}: decode p50 {row['decode_p50_s'] * 1000:.0f} ms  RTF {row['rtf']:.2f}  "
            f"substitutions {row['substitutions']:.0f}  WER {wer}"
        )
    print(f"load average (1 min) {load0:.1f} → {load1:.1f} on {os.cpu_count()} cores")
    full = results["full 30 s"]
    for label, row in results.items():
        if label == "full 30 s":
            continue
        emit(
            Figure(
                f"whisper decode p50, {label}",
                row["decode_p50_s"] * 1000,
                "ms",
                full["decode_p50_s"] * 1000,
                "full 30 s window, same run",
            )
        )
        emit(Figure(f"whisper WER piper 16k, {label}", row["piper 16k"], "", goal_max=0.10))


if __name__ == "__main__":
    main()
