"""The small interfaces the PSTN leg is written against. `sip_aiosipua.py` and
`rtp_aiortp.py` implement the SIP and RTP ones; the voice pipeline (channels/voice) matches
`VoiceLeg` structurally."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from threadline.projections.context_model import AgentContext

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class MediaOffer:
    """Where the far end wants RTP and which G.711 payload type it chose."""

    remote: Address
    payload_type: int


@dataclass
class CallHandle:
    """One established SIP dialog (either direction)."""

    call_id: str
    media: MediaOffer
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    end_reason: str = ""
    hangup: Callable[[], None] = field(default=lambda: None)

    def mark_ended(self, reason: str) -> None:
        if not self.ended.is_set():
            self.end_reason = reason
            self.ended.set()


@dataclass(frozen=True, slots=True)
class IncomingInvite:
    call_id: str
    caller: str | None  # ANI as E.164 when the From user part is one
    headers: Mapping[str, str]  # lower-cased names
    media: MediaOffer | None  # None when the offer has no usable G.711 stream


# Answers an inbound INVITE: returns the local RTP address to put in the 200 OK answer, or
# None to reject the call.
InviteHandler = Callable[[IncomingInvite], Awaitable[Address | None]]
# Told when an inbound call it accepted is established (ACK seen) and when it ends.
CallStarted = Callable[[IncomingInvite, CallHandle], Awaitable[None]]


class SipAgent(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def dial(
        self,
        number: str,
        trunk: Address,
        *,
        headers: Mapping[str, str],
        local_rtp: Address,
        codecs: tuple[int, ...],
        timeout_s: float,
    ) -> CallHandle:
        """INVITE sip:NUMBER@trunk; returns once answered, raises CallFailedError otherwise."""
        ...


class MediaStream(Protocol):
    """RTP for one call: G.711 in and out, PCM s16le 8 kHz at the edges."""

    on_audio: Callable[[bytes], None] | None

    def send(self, pcm: bytes) -> None:
        """One 20 ms frame (160 samples)."""

    @property
    def packets_sent(self) -> int: ...

    @property
    def packets_received(self) -> int: ...

    async def close(self) -> None: ...


MediaOpener = Callable[[Address, MediaOffer], Awaitable[MediaStream]]


class VoiceLeg(Protocol):
    """What `threadline.channels.voice.pipeline.VoicePipeline` offers a transport."""

    def start(self) -> None: ...

    async def say(self, text: str) -> None: ...

    def next_frame(self) -> bytes: ...

    def push_audio(self, pcm: bytes) -> None: ...

    async def close(self, reason: str) -> None: ...


# (conversation_id, leg_id, output sample rate, the context the first utterance came from:
# its vocabulary biases recognition) -> a started-on-demand voice leg. Called on the event
# loop: it must not block (the context is handed over so it need not read the ledger).
VoiceLegFactory = Callable[[str, str, int, AgentContext], VoiceLeg]
