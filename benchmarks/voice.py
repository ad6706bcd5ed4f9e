"""Voice benchmark: `python -m benchmarks.voice [--runs N] [--phrases N]`.

1. Speech providers, offline defaults: espeak-ng TTS and pocketsphinx STT real-time factors
   (processing time / audio duration; < 1 is faster than real time). STT is measured with the
   conversation vocabulary (what the voice leg uses) and, as the same-run baseline, with the
   general language model on the same audio.
2. Click → first agent audio at the browser: the real widget in headless Chromium against a
   real server (SQLite, offline agent), N runs, each a new visitor: chat until the agent
   offers voice, click "Switch to voice", and time until the browser's inbound audio first
   carries energy (getStats totalAudioEnergy > 0, polled every 10 ms in the page). The
   same-run baseline is the first chat turn of each run (Enter → the agent's reply shown) in
   the same browser.

Runs inside a loopback-only network namespace when it can (root with `unshare`), so media
never leaves 127.0.0.1. Goal (issue 6): click → first audio p50 ≤ 800 ms offline.
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import netns  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def providers(phrases: int) -> dict[str, float]:
    from harness.voice_phrases import CHAT, SPOKEN
    from threadline.channels.voice.stt_pocketsphinx import PocketsphinxSTT
    from threadline.channels.voice.tts_espeak import EspeakTTS
    from threadline.channels.voice.vocabulary import build_vocabulary, normalize

    vocabulary = build_vocabulary(CHAT, ["January claim", "water damage"])
    texts = [SPOKEN[i % len(SPOKEN)] for i in range(phrases)]
    tts, stt = EspeakTTS(), PocketsphinxSTT()
    await stt.warm_up()
    tts_s = stt_s = base_s = audio_s = 0.0
    exact = 0
    for text in texts:
        t0 = time.perf_counter()
        pcm = await tts.synthesize(text, 16_000)
        t1 = time.perf_counter()
        heard = await stt.transcribe(pcm, 16_000, vocabulary)
        t2 = time.perf_counter()
        await stt.transcribe(pcm, 16_000, None)
        t3 = time.perf_counter()
        tts_s, stt_s, base_s = tts_s + t1 - t0, stt_s + t2 - t1, base_s + t3 - t2
        audio_s += len(pcm) / 2 / 16_000
        exact += heard.text == normalize(text)
    stt.close()
    return {
        "tts_rtf": tts_s / audio_s,
        "stt_rtf_vocabulary": stt_s / audio_s,
        "stt_rtf_general_lm": base_s / audio_s,
        "stt_exact": exact / len(texts),
        "audio_s": audio_s,
    }


def browser_runs(runs: int) -> dict[str, list[float]]:
    from harness.voice_browser import (
        chat_until_offer,
        chromium_with_mic,
        switch_to_voice,
        voice_server,
    )

    click_to_audio: list[float] = []
    chat_turn: list[float] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        wav = tmp / "silence.wav"
        subprocess.run(
            ["sox", "-n", "-r", "48000", "-c", "1", "-b", "16", str(wav), "trim", "0", "30"],
            check=True,
        )
        with voice_server(tmp) as server, chromium_with_mic(wav) as browser:
            for i in range(runs + 1):  # run 0 warms the server (imports, models) up
                context = browser.new_context()
                page = context.new_page()
                page.goto(f"{server.base_url}/embed?tl_voice_processing=off")
                turns = chat_until_offer(page)
                heard = switch_to_voice(page)
                if i > 0:
                    chat_turn.append(turns[0])
                    click_to_audio.append(float(heard["clickToAudioMs"]))
                page.click(".tl-hangup")
                context.close()
                print(f"  run {i}: click→audio {heard['clickToAudioMs']:.0f} ms", flush=True)
    return {"click_to_audio_ms": click_to_audio, "chat_turn_ms": chat_turn}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--phrases", type=int, default=30)
    parser.add_argument("--no-netns", action="store_true", help="run in the current namespace")
    args = parser.parse_args()
    if not args.no_netns and not netns.inside() and netns.available():
        argv = [sys.executable, "-m", "benchmarks.voice", *sys.argv[1:]]
        sys.exit(subprocess.run(netns.command(argv), env=netns.env(), cwd=ROOT).returncode)

    print(f"voice benchmark (loopback-only netns: {netns.inside()})")
    speech = asyncio.run(providers(args.phrases))
    print(f"TTS espeak-ng          RTF {speech['tts_rtf']:.4f}")
    print(
        f"STT pocketsphinx+vocab RTF {speech['stt_rtf_vocabulary']:.4f}  "
        f"(exact {speech['stt_exact']:.0%} of {args.phrases} phrases)"
    )
    print(
        f"STT general LM (base)  RTF {speech['stt_rtf_general_lm']:.4f}  "
        f"vocab/general = {speech['stt_rtf_vocabulary'] / speech['stt_rtf_general_lm']:.2f}"
    )
    runs = browser_runs(args.runs)
    audio, turn = runs["click_to_audio_ms"], runs["chat_turn_ms"]
    p50, p95 = statistics.median(audio), pct(audio, 0.95)
    base = statistics.median(turn)
    print(f"click → first agent audio  p50 {p50:.0f} ms  p95 {p95:.0f} ms  (n={len(audio)})")
    print(f"chat turn (baseline)       p50 {base:.0f} ms  → click→audio = {p50 / base:.1f}× a turn")
    print(f"goal p50 ≤ 800 ms: {'met' if p50 <= 800 else 'NOT met'}")
    print(
        json.dumps(
            {
                **speech,
                "click_to_audio_p50_ms": p50,
                "click_to_audio_p95_ms": p95,
                "chat_turn_p50_ms": base,
                "runs": len(audio),
            }
        )
    )


if __name__ == "__main__":
    main()
