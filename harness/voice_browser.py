"""The real widget in headless Chromium, talking to a real Threadline server, with a fake
microphone fed from a piper WAV. Shared by the voice e2e test and benchmarks/voice.py.

Run it inside a loopback-only network namespace (harness/netns.py): the server gathers
ICE candidates on 127.0.0.1 only (THREADLINE_ICE_HOST_ADDRESSES) and Chromium is allowed
loopback candidates.
"""

from __future__ import annotations

import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright

from harness.api_server import ROOT, ApiServer, server_env
from harness.browser import CHROMIUM, FLAGS
from threadline.app.demo import CHAT_BEFORE

MIC_RATE = 48_000


def fake_mic_wav(path: Path, text: str, lead_silence_s: float) -> Path:
    """Piper speech (the packaged voice; no espeak-ng or sox needed) padded with leading
    silence: Chromium starts playing the file at getUserMedia time, before the call is up."""
    import asyncio

    from threadline.channels.voice.tts_piper import PiperTTS

    speech = asyncio.run(PiperTTS().synthesize(text, MIC_RATE))
    lead = bytes(int(MIC_RATE * lead_silence_s) * 2)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(MIC_RATE)
        w.writeframes(lead + speech + bytes(MIC_RATE * 2 * 2))
    return path


def seed(database_url: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "threadline.app.cli", "seed"],
        cwd=ROOT,
        env=server_env(database_url),
        capture_output=True,
        timeout=120,
        check=True,
    )


@contextmanager
def voice_server(tmp: Path, **env: str) -> Iterator[ApiServer]:
    database_url = f"sqlite:///{tmp / 'threadline.db'}"
    seed(database_url)
    with ApiServer(
        database_url,
        tmp / "server.log",
        access_log=False,
        THREADLINE_ICE_HOST_ADDRESSES="127.0.0.1",
        **{"THREADLINE_VOICE_PRELOAD": "1", **env},  # the first call is timed like the rest
    ) as server:
        yield server


@contextmanager
def chromium_with_mic(wav: Path) -> Iterator[Browser]:
    flags = [
        *FLAGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}%noloop",
        "--allow-loopback-in-peer-connection",
        "--autoplay-policy=no-user-gesture-required",
    ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=flags, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def wait_js(page: Page, expression: str, timeout_s: float = 30.0, arg: Any = None) -> None:
    """page.wait_for_function evaluates with eval(), which the widget page's CSP forbids
    (as it should); poll with evaluate (CDP, not subject to the page's CSP) instead."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression, arg):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true within {timeout_s}s: {expression}")
        time.sleep(0.02)


def chat_until_offer(page: Page, lines: tuple[str, ...] = CHAT_BEFORE) -> list[float]:
    """Types each line and waits for the agent's reply; returns each turn's duration (ms,
    Enter → reply shown) once the "Switch to voice" offer is visible."""
    turns: list[float] = []
    start = page.evaluate("() => document.querySelectorAll('.tl-msg.tl-agent').length")
    for n, line in enumerate(lines, start=1):
        # The reply can arrive (SSE) before the send cycle ends; Enter does nothing while
        # the Send button is still disabled.
        wait_js(page, "() => !window.Threadline.ui.send.disabled")
        page.fill("#tl-input", line)
        began = time.perf_counter()
        page.press("#tl-input", "Enter")
        wait_js(
            page,
            "n => document.querySelectorAll('.tl-msg.tl-agent').length >= n",
            arg=start + n,
        )
        turns.append((time.perf_counter() - began) * 1000)
    page.wait_for_selector(".tl-voice:not(.tl-hangup):not([hidden])", timeout=30_000)
    return turns


def switch_to_voice(page: Page) -> dict[str, Any]:
    """Clicks the button; returns when the agent's audio reached the browser."""
    page.click(".tl-voice:not(.tl-hangup)")
    wait_js(page, "() => window.Threadline.voice.firstAudioAt !== null")
    result: dict[str, Any] = page.evaluate(
        """async () => {
          const v = window.Threadline.voice;
          const out = { clickToAudioMs: v.firstAudioAt - v.clickAt, legId: v.legId,
                        steps: Object.fromEntries(
                          ["acceptedAt", "micAt", "offerAt", "answerAt", "connectedAt",
                           "firstAudioAt"].map(k => [k, v[k] === null ? null : v[k] - v.clickAt])),
                        conversationId: window.Threadline.client.conversationId,
                        token: window.Threadline.client.token };
          (await v.pc.getStats()).forEach(s => {
            if (s.type === "inbound-rtp" && s.kind === "audio") {
              out.bytesReceived = s.bytesReceived; out.totalAudioEnergy = s.totalAudioEnergy;
            }
            if (s.type === "local-candidate" || s.type === "remote-candidate") {
              (out.candidates = out.candidates || []).push(s.address || s.ip);
            }
          });
          return out;
        }"""
    )
    return result


# Installed before the widget loads (CDP, so the page's CSP does not apply): every inbound
# WebRTC audio track is also captured with Web Audio, from its first sample, into
# window.__tlHeard so a test can hear what the visitor heard.
RECORD_INBOUND_AUDIO = """(() => {
  const Native = window.RTCPeerConnection;
  const heard = (window.__tlHeard = { chunks: [], rate: 0 });
  function Recording(...args) {
    const pc = new Native(...args);
    pc.addEventListener("track", (ev) => {
      if (ev.track.kind !== "audio") return;
      const ctx = new AudioContext();
      heard.rate = ctx.sampleRate;
      const source = ctx.createMediaStreamSource(new MediaStream([ev.track]));
      const tap = ctx.createScriptProcessor(4096, 1, 1);
      tap.onaudioprocess = (e) =>
        heard.chunks.push(Float32Array.from(e.inputBuffer.getChannelData(0)));
      source.connect(tap);
      tap.connect(ctx.destination);
      heard.ctx = ctx;
    });
    return pc;
  }
  Recording.prototype = Native.prototype;
  window.RTCPeerConnection = Recording;
})();"""


def heard_audio(page: Page) -> tuple[bytes, int]:
    """What the browser received so far (see RECORD_INBOUND_AUDIO): mono s16le and its rate."""
    import base64

    data: dict[str, Any] = page.evaluate(
        """() => {
          const h = window.__tlHeard;
          let n = 0; h.chunks.forEach(c => { n += c.length; });
          const out = new Int16Array(n); let i = 0;
          h.chunks.forEach(c => c.forEach(x => {
            out[i++] = Math.max(-1, Math.min(1, x)) * 32767;
          }));
          let bin = ""; const bytes = new Uint8Array(out.buffer);
          for (let k = 0; k < bytes.length; k += 8192)
            bin += String.fromCharCode.apply(null, bytes.subarray(k, k + 8192));
          return { b64: btoa(bin), rate: h.rate };
        }"""
    )
    return base64.b64decode(data["b64"]), int(data["rate"])


def events(server: ApiServer, token: str, conversation_id: str) -> list[dict[str, Any]]:
    with server.client(token) as http:
        page = http.get(f"/v1/conversations/{conversation_id}/events", params={"limit": 1000})
        page.raise_for_status()
        found: list[dict[str, Any]] = page.json()["events"]
        return found


def wait_for_event(
    server: ApiServer, token: str, conversation_id: str, type_name: str, within: float = 20
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    while True:
        found = events(server, token, conversation_id)
        if any(e["type"] == type_name for e in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)
