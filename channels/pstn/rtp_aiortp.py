"""RTP media on aiortp (leaf adapter: the only module that imports it): G.711 μ-law/A-law
encode/decode, jitter buffer and RTCP are aiortp's; we hand it 20 ms PCM frames."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiortp

from threadline.channels.pstn.ports import Address, MediaOffer


class AiortpStream:
    def __init__(self, session: Any) -> None:
        self._session = session
        self._sent = 0
        self._received = 0
        self.on_audio: Callable[[bytes], None] | None = None
        session.on_audio = self._audio

    @classmethod
    async def open(cls, local: Address, offer: MediaOffer) -> AiortpStream:
        session = await aiortp.RTPSession.create(
            local_addr=local,
            remote_addr=offer.remote,
            payload_type=offer.payload_type,
            clock_rate=8000,
            # Latching: once the far end sends, answer where its packets come from.
            symmetric_rtp=True,
        )
        return cls(session)

    def _audio(self, pcm: bytes, timestamp: int) -> None:
        self._received += 1
        if self.on_audio is not None:
            self.on_audio(pcm)

    def send(self, pcm: bytes) -> None:
        self._session.send_audio_pcm_auto(pcm)
        self._sent += 1

    @property
    def packets_sent(self) -> int:
        return int(self._session.stats.get("packets_sent", self._sent))

    @property
    def packets_received(self) -> int:
        return int(self._session.stats.get("packets_received", self._received))

    async def close(self) -> None:
        await self._session.close()


async def open_stream(local: Address, offer: MediaOffer) -> AiortpStream:
    return await AiortpStream.open(local, offer)
