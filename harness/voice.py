"""Helpers for voice tests: scripted audio peers, an in-memory event sink, espeak speech.

Everything here talks only to 127.0.0.1: `loopback_only()` pins aioice's host candidates
and no ICE servers are configured, so no packet can leave the loopback interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from collections.abc import Callable, Sequence
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from threadline.channels.voice.webrtc import configure_host_addresses
from threadline.ledger.envelope import NewEvent

RATE = 48_000
FRAME = RATE // 50


def loopback_only() -> None:
    configure_host_addresses(["127.0.0.1"])


class RecordingSink:
    """An EventSink that keeps the events (what the ledger would receive)."""

    def __init__(self) -> None:
        self.events: list[NewEvent] = []
        self.changed = asyncio.Event()

    async def __call__(self, event: NewEvent) -> None:
        self.events.append(event)
        self.changed.set()

    def of_type(self, type_name: str) -> list[Any]:
        return [e.data for e in self.events if e.type == type_name]

    async def wait_for(self, type_name: str, count: int = 1, within: float = 10.0) -> list[Any]:
        deadline = time.monotonic() + within
        while len(self.of_type(type_name)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {count}x {type_name} in {[e.type for e in self.events]}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return self.of_type(type_name)


async def eventually(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Polls a condition that no event signals (frames heard, buffer drained)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def silence(ms: int, rate: int = RATE) -> bytes:
    return bytes(rate * ms // 1000 * 2)


class ScriptTrack(MediaStreamTrack):
    """A microphone that plays scripted PCM (48 kHz mono s16) in real time, then silence.

    `play(pcm)` appends audio; `hang()` makes recv() block forever, i.e. the sender stops
    sending without closing anything — what a crashed browser or a dead network looks like."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._buffer = bytearray()
        self._start: float | None = None
        self._pts = 0
        self._hung = asyncio.Event()

    def play(self, pcm: bytes) -> None:
        self._buffer += pcm

    @property
    def pending_ms(self) -> int:
        return len(self._buffer) * 1000 // (RATE * 2)

    def hang(self) -> None:
        self._hung.set()

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        if self._hung.is_set():
            await asyncio.Event().wait()
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += FRAME
            delay = self._start + self._pts / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        chunk = bytes(self._buffer[: FRAME * 2])
        del self._buffer[: FRAME * 2]
        chunk += bytes(FRAME * 2 - len(chunk))
        frame = av.AudioFrame.from_ndarray(
            np.frombuffer(chunk, "<i2").reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        return frame


class BrowserPeer:
    """The visitor's side: sends a ScriptTrack, records what it hears (RMS per frame)."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.mic = ScriptTrack()
        self.pc.addTrack(self.mic)
        self.heard: list[tuple[float, float]] = []  # (wall time, rms) per received frame
        self.audio = bytearray()  # what it heard, mono s16 at 16 kHz (to transcribe back)
        self._to_16k: Any = None
        self._consumer: asyncio.Task[None] | None = None

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._consumer = asyncio.ensure_future(self._consume(track))

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def open_leg(self, http: Any, handoff_token: str) -> dict[str, Any]:
        """Redeems `handoff_token` for a voice leg on a served API (`http`: an
        httpx.AsyncClient at its base URL) with this peer's offer; applies the answer and
        returns the response body."""
        body = {"handoff_token": handoff_token, "sdp": await self.offer(), "type": "offer"}
        opened = await http.post("/v1/voice/sessions", json=body)
        assert opened.status_code == 201, opened.text
        found: dict[str, Any] = opened.json()
        await self.answer(found["sdp"])
        return found

    async def _consume(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await asyncio.wait_for(track.recv(), 10)
            except (TimeoutError, MediaStreamError):
                return
            samples = frame.to_ndarray().astype(np.float64)
            self.heard.append((time.time(), float(np.sqrt(np.mean(samples * samples)))))
            if self._to_16k is None:
                from threadline.channels.voice.audio_av import Resampler

                self._to_16k = Resampler(16_000)
            self.audio += self._to_16k.frame(frame)

    def first_sound_at(self, threshold: float = 300.0) -> float | None:
        return next((t for t, rms in self.heard if rms > threshold), None)

    def loud_frames(self, threshold: float = 300.0) -> int:
        return sum(1 for _, rms in self.heard if rms > threshold)

    def candidate_hosts(self) -> Sequence[str]:
        sdp = self.pc.localDescription.sdp if self.pc.localDescription else ""
        return [ln.split()[4] for ln in sdp.splitlines() if ln.startswith("a=candidate:")]

    async def close(self) -> None:
        await self.pc.close()
        if self._consumer is not None:
            self._consumer.cancel()
