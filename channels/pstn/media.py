"""Runs one established call: pulls 20 ms frames from the voice leg and sends them as RTP
on the media clock, feeds the far end's audio (8 kHz, upsampled to the pipeline's 16 kHz)
into the leg, and notices a dead peer. Transport-agnostic: any `MediaStream`."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

from threadline.channels.pstn.audio import FRAME_MS, Upsampler2x, fit_frame
from threadline.channels.pstn.errors import NoMediaPortError
from threadline.channels.pstn.ports import MediaStream, VoiceLeg

log = logging.getLogger(__name__)

FRAME_S = FRAME_MS / 1000
# Falling further behind than this (a stalled loop) restarts the clock instead of bursting.
MAX_LAG_S = 0.2

_reserved: set[int] = set()
_reserved_lock = threading.Lock()


def reserve_rtp_port(host: str, low: int, high: int) -> int:
    """An even port p with p and p+1 (RTCP) free on `host`, held until `release_rtp_port`."""
    start = low + (low % 2)
    with _reserved_lock:
        for port in range(start, high, 2):
            if port in _reserved:
                continue
            socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
            try:
                socks[0].bind((host, port))
                socks[1].bind((host, port + 1))
            except OSError:
                continue
            finally:
                for s in socks:
                    s.close()
            _reserved.add(port)
            return port
    raise NoMediaPortError(f"no free RTP port pair in {low}-{high} on {host}")


def release_rtp_port(port: int) -> None:
    with _reserved_lock:
        _reserved.discard(port)


class MediaBridge:
    def __init__(self, stream: MediaStream, leg: VoiceLeg, *, media_timeout_s: float) -> None:
        self._stream = stream
        self._leg = leg
        self._timeout = media_timeout_s
        self._upsample = Upsampler2x()
        self._last_heard = time.monotonic()
        self.frames_out = 0
        self.frames_in = 0
        stream.on_audio = self._inbound

    def _inbound(self, pcm: bytes) -> None:
        self.frames_in += 1
        self._last_heard = time.monotonic()
        self._leg.push_audio(self._upsample(pcm))

    async def run(self, ended: asyncio.Event) -> str:
        """Sends until `ended` is set (returns "") or the far end goes silent at the RTP
        level for `media_timeout_s` (returns "media timeout")."""
        next_at = time.monotonic()
        self._last_heard = next_at
        while not ended.is_set():
            try:
                self._stream.send(fit_frame(self._leg.next_frame()))
                self.frames_out += 1
            except Exception as exc:  # a media error is data: logged, the call goes on
                log.warning("RTP send failed: %s", exc)
            now = time.monotonic()
            if now - self._last_heard > self._timeout:
                return "media timeout"
            next_at += FRAME_S
            if now - next_at > MAX_LAG_S:
                next_at = now
            try:
                await asyncio.wait_for(ended.wait(), timeout=max(0.0, next_at - now))
            except TimeoutError:
                continue
        return ""
