"""A person on the visitor's WebRTC call (issue 16): the operator's browser peer is bridged
to the visitor's leg through aiortc's MediaRelay.

Joining: the operator's peer is sent a relayed copy of the visitor's microphone (the leg
keeps its own copy, so the visitor's words are still transcribed onto the one stream), and
the visitor's sender is switched from the AI's voice to a relayed copy of the operator's
microphone. The AI leaves the call: its turn handler is swapped for a silent one and its
voice no longer reaches the visitor. Leaving restores both; the leg never re-negotiates.

What the operator says is transcribed too (a third relayed copy of their microphone into
`SpeechListener`: the leg's VAD kind, recogniser and vocabulary) and recorded as
UtteranceTranscribed with role `operator`, so the AI that takes the call back has their
words in its context. Leaving transcribes their last words before it returns, so those are
on the stream before OperatorLeftCall.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from threadline.channels.voice.errors import CallNotBridgeableError, InvalidOfferError
from threadline.channels.voice.listener import SpeechListener
from threadline.channels.voice.pipeline import INBOUND_RATE
from threadline.channels.voice.ports import VisitorTurn

if TYPE_CHECKING:
    # A leaf too (aiortc): loaded where a leg is made, never at import time of ours.
    from threadline.channels.voice.webrtc import IceConfig, WebRtcLeg

log = logging.getLogger(__name__)


class _MonoTrack(MediaStreamTrack):
    """The operator's microphone as the visitor's sender expects it: the sender's encoder
    was set up by the AI's voice (48 kHz mono s16, PipelineTrack) and refuses another
    layout, while decoded browser audio is stereo. Timestamps continue the AI's, so the
    visitor's jitter buffer sees one stream."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack, rate: int, pts: int) -> None:
        super().__init__()
        self._source = source
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        self._rate = rate
        self._pts = pts
        self._pending: list[Any] = []

    async def recv(self) -> Any:
        while not self._pending:
            try:
                source = await self._source.recv()
            except MediaStreamError:
                # The operator hung up while the sender waited on this track: a raise here
                # would end the visitor's sender for good (aiortc stops on MediaStreamError),
                # so hand over one silent frame; the next one is the AI's again.
                return self._silence()
            assert isinstance(source, av.AudioFrame)  # an audio track's frames
            self._pending = list(self._resampler.resample(source))
        frame = self._pending.pop(0)
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, self._rate)
        self._pts += frame.samples
        return frame

    def _silence(self) -> Any:
        samples = self._rate // 50  # 20 ms
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, samples), dtype="<i2"), format="s16", layout="mono"
        )
        frame.sample_rate = self._rate
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, self._rate)
        self._pts += samples
        return frame


async def _silent(turn: VisitorTurn) -> str | None:
    return None  # a person is on the call: the AI hears nothing to answer


class CallBridge:
    def __init__(self, leg: WebRtcLeg, operator: str, *, ice: IceConfig | None = None) -> None:
        self.leg = leg
        self.operator = operator
        from threadline.channels.voice.webrtc import IceConfig

        self.pc = RTCPeerConnection((ice or IceConfig()).rtc_configuration())
        self._relay = MediaRelay()
        self._operator_track: MediaStreamTrack | None = None
        self._ai_turns: Any = None
        self._left = False
        self.listener: SpeechListener | None = None
        self._listening: asyncio.Task[None] | None = None

    async def join(self, sdp: str, sdp_type: str = "offer") -> str:
        """Answers the operator's offer; returns the answer SDP."""
        leg = self.leg
        if leg.inbound is None or leg.sender is None or leg.closed_reason is not None:
            raise CallNotBridgeableError("the visitor's call has no live audio yet")
        if sdp_type != "offer" or "m=audio" not in sdp:
            raise InvalidOfferError("expected an SDP offer with an audio section")
        self.pc.on("track", self._on_track)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            self.pc.addTrack(leg.relay.subscribe(leg.inbound))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except (ValueError, TypeError, AssertionError, IndexError, KeyError) as exc:
            await self.pc.close()
            raise InvalidOfferError(f"cannot answer this offer: {exc}") from exc
        # The AI leaves now, not when the operator's audio arrives: nothing it says after
        # the operator pressed "join" may reach the visitor.
        self._ai_turns = leg.pipeline.on_turn
        leg.pipeline.on_turn = _silent
        leg.pipeline.held = True
        leg.pipeline.stop_speaking()
        # The cut is on the stream before the caller records OperatorJoinedCall: whoever
        # reads the stream sees the AI's last words end before the person joined.
        await leg.pipeline.settle()
        return str(self.pc.localDescription.sdp)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "audio" or self._operator_track is not None or self._left:
            return
        self._operator_track = track
        assert self.leg.sender is not None
        ai = self.leg.track
        self.leg.sender.replaceTrack(_MonoTrack(self._relay.subscribe(track), ai.rate, ai.pts))
        self.listener = SpeechListener(
            self.leg.pipeline, role="operator", actor=f"operator:{self.operator}"
        )
        self._listening = asyncio.ensure_future(
            self._listen(self._relay.subscribe(track), self.listener)
        )

    async def _listen(self, track: MediaStreamTrack, listener: SpeechListener) -> None:
        """The operator's microphone, resampled to the recogniser's rate, into the listener."""
        from threadline.channels.voice.audio_av import Resampler

        resampler = Resampler(INBOUND_RATE)
        while not self._left:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            try:
                listener.push_audio(resampler.frame(frame))
            except Exception as exc:  # one bad frame must not end the transcription
                self.leg.pipeline.report_error("operator inbound", exc)

    async def leave(self) -> None:
        """Hands the call back to the AI; idempotent."""
        if self._left:
            return
        self._left = True
        leg = self.leg
        if self._listening is not None:
            self._listening.cancel()
            await asyncio.gather(self._listening, return_exceptions=True)
        if self.listener is not None:
            try:
                await self.listener.close()  # their last words, recorded before we return
            except Exception as exc:
                leg.pipeline.report_error("operator stt", exc)
        if self._ai_turns is not None:
            leg.pipeline.on_turn = self._ai_turns
            leg.pipeline.held = False
        if leg.sender is not None and leg.closed_reason is None:
            leg.track.resync()
            leg.sender.replaceTrack(leg.track)
        try:
            await self.pc.close()
        except Exception as exc:  # a half-open operator peer must not keep the bridge up
            log.warning("operator peer on %s: closing: %s", leg.leg_id, exc)
