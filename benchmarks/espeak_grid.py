"""Grid over espeak-ng settings (voice and variant, rate, pitch, word gap, amplitude): the word
error rate whisper tiny.en gives on the fallback voice's speech at 16 kHz and at 8 kHz.

Tuned on its own sentence set (`TUNING_CHAT`, `TUNING_UNSEEN`, never in the held-in set of
harness/voice_wer.py), so the default chosen here is not fitted to the sentences the WER
test reports on. Each configuration synthesises every tuning sentence, resamples it with
libswresample to 16 kHz and to 8 kHz, and `WhisperSTT` decodes it as on a live leg (8 kHz
upsampled to 16 kHz first: by libswresample, or with `--pstn` by the phone leg's own FIR
upsampler), biased with the tuning chat's vocabulary.

    python -m benchmarks.espeak_grid --voices en-us,en-us+m3 --rates 140,165 [--pitch 50]
        [--gap 0] [--amplitude 100] [--beam 1] [--out grid.jsonl]

Every comma-separated option is one axis; the grid is their product. One JSON line per
configuration is appended to `--out`, a table is printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import time
from pathlib import Path

from harness.voice_wer import edit_distance, words
from threadline.channels.pstn.audio import Upsampler2x
from threadline.channels.voice.stt_whisper import WhisperSTT
from threadline.channels.voice.tts_espeak import EspeakTTS
from threadline.channels.voice.vocabulary import build_vocabulary

TUNING_CHAT = [
    "I ordered two pairs of shoes last week",
    "the tracking number does not work",
    "can you check where my package is now",
    "I paid with my credit card",
    "the box arrived damaged",
    "I would like a refund please",
]
TUNING_UNSEEN = [
    "my sister will pick it up from the post office",
    "do you have the same coat in a larger size",
    "the courier left a note but nobody knocked",
    "I moved house at the start of the month",
    "how many days does a return usually take",
    "please call me back after six in the evening",
]
TUNING_VOCABULARY = build_vocabulary(TUNING_CHAT, ["package", "refund", "tracking number"])


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


async def measure(
    stt: WhisperSTT, tts: EspeakTTS, rates: tuple[int, ...], show: bool = False, pstn: bool = False
) -> dict[int, float]:
    errors = dict.fromkeys(rates, 0)
    total = 0
    for text in TUNING_CHAT + TUNING_UNSEEN:
        ref = words(text)
        total += len(ref)
        for rate in rates:
            pcm = await tts.synthesize(text, rate)
            if pstn and rate == 8_000:
                # As a phone leg delivers it: channels/pstn's 2x FIR upsampler, then 16 kHz.
                heard = await stt.transcribe(Upsampler2x()(pcm), 16_000, TUNING_VOCABULARY)
            else:
                heard = await stt.transcribe(pcm, rate, TUNING_VOCABULARY)
            wrong = edit_distance(ref, words(heard.text))
            errors[rate] += wrong
            if show and wrong:
                print(f"  {rate // 1000}k {wrong}: {text!r} → {heard.text!r}")
    return {rate: errors[rate] / total for rate in rates}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voices", default="en-us")
    parser.add_argument("--rates", default="165")
    parser.add_argument("--pitch", default="50")
    parser.add_argument("--gap", default="0")
    parser.add_argument("--amplitude", default="100")
    parser.add_argument("--beam", type=int, default=1)
    parser.add_argument("--fallback", action="store_true", help="temperature fallback")
    parser.add_argument("--out", default="espeak-grid.jsonl")
    parser.add_argument("--pstn", action="store_true", help="8 kHz through the PSTN upsampler")
    parser.add_argument("--show", action="store_true", help="print every misheard sentence")
    args = parser.parse_args()
    stt = WhisperSTT(
        beam_size=args.beam,
        temperature_fallback=args.fallback,
    )
    await stt.warm_up()
    grid = itertools.product(
        [v for v in args.voices.split(",") if v],
        _ints(args.rates),
        _ints(args.pitch),
        _ints(args.gap),
        _ints(args.amplitude),
    )
    rows = []
    for voice, wpm, pitch, gap, amplitude in grid:
        tts = EspeakTTS(voice, wpm, pitch=pitch, word_gap=gap, amplitude=amplitude)
        started = time.monotonic()
        wer = await measure(stt, tts, (16_000, 8_000), args.show, args.pstn)
        row = {
            "voice": voice,
            "wpm": wpm,
            "pitch": pitch,
            "gap": gap,
            "amplitude": amplitude,
            "beam": args.beam,
            "fallback": args.fallback,
            "pstn": args.pstn,
            "wer16": round(wer[16_000], 3),
            "wer8": round(wer[8_000], 3),
            "seconds": round(time.monotonic() - started, 1),
            "load": round(os.getloadavg()[0], 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        with Path(args.out).open("a") as out:  # noqa: ASYNC230 (one line per ~minute)
            out.write(json.dumps(row) + "\n")
    print("\n| voice | wpm | pitch | gap | amp | WER 16k | WER 8k |")
    print("|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: r["wer16"] + r["wer8"]):
        print(
            f"| {r['voice']} | {r['wpm']} | {r['pitch']} | {r['gap']} | {r['amplitude']} "
            f"| {r['wer16']:.3f} | {r['wer8']:.3f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
