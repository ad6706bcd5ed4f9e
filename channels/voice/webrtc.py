"""The WebRTC transport of a voice leg (aiortc): the only file that imports aiortc/aioice.

One `WebRtcLeg` per browser call: a server-side RTCPeerConnection answering the browser's SDP
offer, an outbound track fed by the pipeline (48 kHz, 20 ms frames, paced on the wall clock),
and a consumer of the inbound track with timeouts, because `recv()` waits forever when the
sender just stops.

ICE: aiortc does not trickle; the answer carries all candidates. `ice_servers` defaults to
none (aiortc would otherwise use a public STUN server). `ice_host_addresses` replaces aioice's
interface enumeration, which skips 127.0.0.1; see `configure_host_addresses`.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aioice.ice
import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from threadline.channels.voice.errors import InvalidOfferError
from threadline.channels.voice.pipeline import INBOUND_RATE, VoicePipeline
from threadline.channels.voice.playback import FRAME_MS

if TYPE_CHECKING:
    from threadline.channels.voice.presynth import PreparedAudio

log = logging.getLogger(__name__)

_original_get_host_addresses = aioice.ice.get_host_addresses


def configure_host_addresses(addresses: Sequence[str]) -> None:
    """Makes aioice gather host candidates on exactly `addresses` (process-wide, as aioice's
    enumeration is a module function). Empty restores aioice's own enumeration.

    This is the documented `THREADLINE_ICE_HOST_ADDRESSES` setting: aioice never offers
    127.0.0.1, so a loopback-only setup (tests inside `unshare -n`, a single-host demo)
    cannot connect without it; a server with several interfaces can also pin its media to one.
    """
    chosen = tuple(addresses)
    if not chosen:
        aioice.ice.get_host_addresses = _original_get_host_addresses
        return

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (use_ipv6 if ":" in a else use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses


@dataclass(frozen=True, slots=True)
class IceConfig:
    servers: tuple[str, ...] = ()
    username: str | None = None
    credential: str | None = None

    def rtc_configuration(self) -> RTCConfiguration:
        servers = [
            RTCIceServer(urls=url, username=self.username, credential=self.credential)
            if url.startswith("turn")
            else RTCIceServer(urls=url)
            for url in self.servers
        ]
        return RTCConfiguration(iceServers=servers)


class PipelineTrack(MediaStreamTrack):
    """Outbound audio pulled from the pipeline, one 20 ms frame per tick.

    Paced against a monotonic start time (not sleep-per-frame), so scheduling jitter does not
    accumulate into drift; a late tick sends its frame at once and catches up."""

    kind = "audio"

    def __init__(self, source: Callable[[], bytes], sample_rate: int = 48_000) -> None:
        super().__init__()
        self._source = source
        self._rate = sample_rate
        self._samples = sample_rate * FRAME_MS // 1000
        self._start: float | None = None
        self._pts = 0

    @property
    def rate(self) -> int:
        return self._rate

    @property
    def pts(self) -> int:
        return self._pts

    def resync(self) -> None:
        """Back on the sender after a pause (an operator held the call): pace from now, so the
        frames not pulled meanwhile are not sent in a burst."""
        if self._start is not None:
            self._start = time.monotonic() - self._pts / self._rate

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += self._samples
            delay = self._start + self._pts / self._rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        pcm = self._source()
        samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = self._rate
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, self._rate)
        return frame


class WebRtcLeg:
    """A browser call bound to a pipeline. `close(reason)` is idempotent and always ends in
    LegClosed(reason) on the conversation (recorded by the pipeline)."""

    def __init__(
        self,
        pipeline: VoicePipeline,
        *,
        ice: IceConfig | None = None,
        peer_timeout_s: float = 5.0,
        connect_timeout_s: float = 15.0,
        on_closed: Callable[[WebRtcLeg, str], Awaitable[None]] | None = None,
        conversation_id: str | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.conversation_id = conversation_id
        self.leg_id = pipeline.leg_id
        self.peer_timeout_s = peer_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.pc = RTCPeerConnection((ice or IceConfig()).rtc_configuration())
        self.track = PipelineTrack(pipeline.next_frame, pipeline.playback.sample_rate)
        self.connected_at: float | None = None
        self.closed_reason: str | None = None
        self._on_closed = on_closed
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing: asyncio.Task[None] | None = None
        self._got_track = asyncio.Event()
        # The visitor's audio goes through a relay so that an operator's peer can hear it too
        # (channels/voice/bridge.py); `sender` carries the AI's voice unless a person holds.
        self.relay = MediaRelay()
        self.inbound: MediaStreamTrack | None = None
        self.sender: RTCRtpSender | None = None

    async def accept(
        self,
        sdp: str,
        sdp_type: str = "offer",
        first_utterance: str = "",
        prepared: PreparedAudio | None = None,
    ) -> str:
        """Answers the browser's offer; returns the answer SDP. The first utterance is
        synthesised while ICE gathers (or was, from the handoff's acceptance: `prepared`), so
        it is queued before the media path is up and is the first thing the browser hears."""
        if sdp_type != "offer" or "m=audio" not in sdp:
            raise InvalidOfferError("expected an SDP offer with an audio section")
        self.pipeline.start()
        if first_utterance:
            self._spawn(self.pipeline.say(first_utterance, prepared), "first-utterance")
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            self.sender = self.pc.addTrack(self.track)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except (ValueError, TypeError, AssertionError, IndexError, KeyError) as exc:
            await self.close("invalid_offer")
            raise InvalidOfferError(f"cannot answer this offer: {exc}") from exc
        self._spawn(self._watch_connect(), "connect-watch")
        return str(self.pc.localDescription.sdp)

    def local_candidate_hosts(self) -> list[str]:
        """Addresses in the answer's candidates (tests assert loopback only)."""
        sdp = self.pc.localDescription.sdp if self.pc.localDescription else ""
        return [line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:")]

    async def close(self, reason: str) -> None:
        if self._closing is None:
            self.closed_reason = reason
            self._closing = asyncio.ensure_future(self._close(reason))
        await asyncio.shield(self._closing)

    async def _close(self, reason: str) -> None:
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        self.track.stop()
        try:
            await self.pc.close()
        except Exception as exc:  # a half-open transport must not keep the leg alive
            log.warning("voice leg %s: closing peer connection: %s", self.leg_id, exc)
        await self.pipeline.close(reason)
        if self._on_closed is not None:
            await self._on_closed(self, reason)

    # -- callbacks and tasks ---------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(f"{name}-{self.leg_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and not self._got_track.is_set():
            self._got_track.set()
            self.inbound = track
            self._spawn(self._consume(self.relay.subscribe(track)), "inbound")

    async def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and self.connected_at is None:
            self.connected_at = time.time()
        elif state in ("failed", "closed") and self._closing is None:
            self._spawn(self.close(f"peer_{state}"), "close")

    async def _watch_connect(self) -> None:
        await asyncio.sleep(self.connect_timeout_s)
        if self.connected_at is None and self._closing is None:
            self._spawn(self.close("connect_timeout"), "close")

    async def _consume(self, track: MediaStreamTrack) -> None:
        from threadline.channels.voice.audio_av import Resampler

        resampler = Resampler(INBOUND_RATE)
        reason = "peer_disconnected"
        while self._closing is None:
            try:
                frame = await asyncio.wait_for(track.recv(), self.peer_timeout_s)
            except TimeoutError:
                reason = "peer_timeout"
                break
            except MediaStreamError:
                break
            try:
                self.pipeline.push_audio(resampler.frame(frame))
            except Exception as exc:  # one bad frame must not end the call
                self.pipeline.report_error("inbound", exc)
        if self._closing is None:
            self._spawn(self.close(reason), "close")
