"""PSTN pieces that need no network: audio, SDP, settings, and the channel's decisions with a
scripted SIP agent on a real (memory) ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from uuid import uuid4

import numpy as np
import pytest

from threadline.channels.messaging.directory import PhoneDirectory
from threadline.channels.pstn.audio import FRAME_BYTES, Upsampler2x, fit_frame
from threadline.channels.pstn.channel import CONVERSATION_HEADER, TOKEN_HEADER, PstnChannel
from threadline.channels.pstn.errors import (
    CallFailedError,
    ConversationClosedError,
    NoPhoneNumberError,
    TrunkNotConfiguredError,
)
from threadline.channels.pstn.media import MediaBridge, release_rtp_port, reserve_rtp_port
from threadline.channels.pstn.ports import Address, CallHandle, IncomingInvite, MediaOffer
from threadline.channels.pstn.settings import PstnSettings
from threadline.channels.pstn.sip_aiosipua import chosen_media, sdp_offer
from threadline.handoff import tokens
from threadline.handoff.service import HandoffService
from threadline.handoff.signing import Signer
from threadline.ledger.envelope import NewEvent
from threadline.ledger.events import (
    ConversationResolved,
    ConversationStarted,
    IdentityVerified,
    LegOpened,
    MessagePosted,
)
from threadline.ledger.store import Ledger, open_ledger
from threadline.projections.context_model import AgentContext

PHONE = "+15551230001"
SIGNER = Signer(b"u" * 32, tokens.PURPOSE)


def test_upsampling_is_band_limited_and_seamless() -> None:
    t = np.arange(800) / 8000
    tone = (8000 * np.sin(2 * np.pi * 1000 * t)).astype("<i2").tobytes()
    whole = Upsampler2x()(tone)
    up = Upsampler2x()
    pieces = b"".join(up(tone[i : i + FRAME_BYTES]) for i in range(0, len(tone), FRAME_BYTES))
    assert len(whole) == 2 * len(tone)
    assert pieces == whole  # 20 ms frames give the same stream as one block
    wide = np.frombuffer(whole, "<i2")[200:].astype(np.float64)  # past the filter's delay
    spectrum = np.abs(np.fft.rfft(wide * np.hanning(wide.size)))
    freqs = np.fft.rfftfreq(wide.size, 1 / 16_000)
    signal = spectrum[np.argmin(np.abs(freqs - 1000))]
    image = spectrum[np.argmin(np.abs(freqs - 7000))]  # linear interpolation leaves -17 dB here
    assert 20 * np.log10(image / signal) < -50
    assert 0.9 < np.sqrt(np.mean(wide**2)) / (8000 / np.sqrt(2)) < 1.1


def test_fit_frame() -> None:
    assert len(fit_frame(b"\x01\x00")) == FRAME_BYTES
    assert len(fit_frame(bytes(FRAME_BYTES * 2))) == FRAME_BYTES


def test_settings_trunk_and_codecs() -> None:
    assert PstnSettings(trunk="127.0.0.1:5080").trunk_address() == ("127.0.0.1", 5080)
    assert PstnSettings(trunk="[::1]:5080").trunk_address() == ("::1", 5080)
    assert PstnSettings(trunk="trunk.local").trunk_address() == ("trunk.local", 5060)
    assert PstnSettings().trunk_address() is None
    with pytest.raises(ValueError, match="codecs"):
        PstnSettings(codecs=(9,))


def test_sdp_offer_and_answer_choice() -> None:
    from aiosipua import parse_sdp

    offer = parse_sdp(sdp_offer("127.0.0.1", 31000, (0, 8), 1))
    assert offer.rtp_address == ("127.0.0.1", 31000)
    assert offer.audio is not None
    assert offer.audio.formats == ["0", "8"]
    answer = parse_sdp(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
    )
    assert chosen_media(answer, (0, 8)) == MediaOffer(("127.0.0.1", 40000), 8)
    assert chosen_media(answer, (0,)) is None
    assert chosen_media(None, (0, 8)) is None


def test_rtp_ports_are_even_and_not_handed_out_twice() -> None:
    a = reserve_rtp_port("127.0.0.1", 32001, 32100)
    b = reserve_rtp_port("127.0.0.1", 32001, 32100)
    assert a % 2 == 0
    assert b % 2 == 0
    assert a != b
    release_rtp_port(a)
    release_rtp_port(b)


class FakeStream:
    def __init__(self) -> None:
        self.on_audio = None
        self.sent: list[bytes] = []

    def send(self, pcm: bytes) -> None:
        self.sent.append(pcm)

    packets_sent = 0
    packets_received = 0

    async def close(self) -> None:
        return None


class FakeLeg:
    def __init__(self) -> None:
        self.pushed: list[bytes] = []
        self.said: list[str] = []
        self.closed: str | None = None

    def start(self) -> None:
        return None

    async def say(self, text: str) -> None:
        self.said.append(text)

    def next_frame(self) -> bytes:
        return b"\x01\x00" * 160

    def push_audio(self, pcm: bytes) -> None:
        self.pushed.append(pcm)

    async def close(self, reason: str) -> None:
        self.closed = reason


def test_media_bridge_paces_frames_and_detects_a_dead_peer() -> None:
    stream, leg = FakeStream(), FakeLeg()
    # 1 s, not 0.3: in a 0.3 s run one scheduling stall of ~0.15 s on a loaded machine is
    # enough to miss the lower bound; in a 1 s run it takes a stall of half a second.
    bridge = MediaBridge(stream, leg, media_timeout_s=1.0)  # type: ignore[arg-type]

    async def run() -> str:
        ended = asyncio.Event()
        return await bridge.run(ended)

    assert asyncio.run(run()) == "media timeout"
    # ~1 s at one frame per 20 ms, sent on the clock rather than as fast as possible
    assert 25 <= len(stream.sent) <= 60
    assert all(len(f) == FRAME_BYTES for f in stream.sent)
    stream.on_audio(b"\x00\x00" * 160)  # type: ignore[misc]
    assert len(leg.pushed[0]) == FRAME_BYTES * 2  # upsampled to 16 kHz


class ScriptedSip:
    """Stands in for the SIP library: the SIP exchange itself is tested against sipp."""

    def __init__(self, fail: CallFailedError | None = None) -> None:
        self.fail = fail
        self.dialed: list[tuple[str, Address, Mapping[str, str]]] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

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
        self.dialed.append((number, trunk, dict(headers)))
        if self.fail is not None:
            raise self.fail
        handle = CallHandle("call-1", MediaOffer(("127.0.0.1", 9), 0))
        handle.mark_ended("remote hangup")
        return handle


@pytest.fixture
def store() -> Iterator[Ledger]:
    ledger = open_ledger("memory://")
    yield ledger
    ledger.close()


def conversation(store: Ledger, *, phone: str | None = PHONE) -> str:
    cid = str(uuid4())
    events = [
        NewEvent("ConversationStarted", ConversationStarted(channel="chat")),
        NewEvent("LegOpened", LegOpened(channel="chat"), leg_id="c1"),
        NewEvent(
            "MessagePosted", MessagePosted(role="visitor", text="my January claim"), leg_id="c1"
        ),
    ]
    if phone:
        verified = IdentityVerified(method="kba", level=2, subject=f"tel:{phone}")
        events.append(NewEvent("IdentityVerified", verified, leg_id="c1"))
    store.append_batch(cid, events)
    return cid


def channel(
    store: Ledger, sip: ScriptedSip, **settings: object
) -> tuple[PstnChannel, list[FakeLeg]]:
    legs: list[FakeLeg] = []

    def voice(cid: str, leg_id: str, rate: int, context: AgentContext) -> FakeLeg:
        assert context.conversation_id == cid
        assert rate == 8000
        legs.append(FakeLeg())
        return legs[-1]

    async def open_media(local: Address, offer: MediaOffer) -> FakeStream:
        return FakeStream()

    pstn = PstnChannel(
        PstnSettings(trunk="127.0.0.1:5099", **settings),  # type: ignore[arg-type]
        HandoffService(store, signer=SIGNER),
        PhoneDirectory(store),
        voice=voice,  # type: ignore[arg-type]
        sip=sip,
        open_media=open_media,  # type: ignore[arg-type]
    )
    return pstn, legs


def test_dial_out_uses_the_verified_number_and_signs_the_headers(store: Ledger) -> None:
    cid = conversation(store)
    sip = ScriptedSip()
    pstn, legs = channel(store, sip)

    async def run() -> None:
        started = await pstn.dial(cid)
        assert started.number == PHONE
        await pstn.wait_idle()

    asyncio.run(run())
    ((number, trunk, headers),) = sip.dialed
    assert (number, trunk) == (PHONE, ("127.0.0.1", 5099))
    assert headers[CONVERSATION_HEADER] == cid
    claims = tokens.verify(SIGNER, headers[TOKEN_HEADER], now=__import__("time").time())
    assert (claims.conversation_id, claims.channel, claims.level) == (cid, "pstn", 2)
    types = [e.type for e in store.read(cid)]
    assert types[-5:] == [
        "HandoffOffered",
        "HandoffAccepted",
        "LegOpened",
        "IdentityVerified",
        "HandoffCompleted",
    ]
    assert "January" in legs[0].said[0]
    assert legs[0].closed == "remote hangup"


def test_a_refused_call_declines_the_handoff(store: Ledger) -> None:
    cid = conversation(store)
    pstn, legs = channel(store, ScriptedSip(fail=CallFailedError("rejected: 486 Busy Here", 486)))

    async def run() -> None:
        await pstn.dial(cid, "+15557770000")
        await pstn.wait_idle()

    asyncio.run(run())
    last = store.read(cid)[-1]
    assert last.type == "HandoffDeclined"
    assert last.data.reason == "rejected: 486 Busy Here"  # type: ignore[attr-defined]
    assert legs == []


def test_dial_refusals_append_nothing(store: Ledger) -> None:
    unverified = conversation(store, phone=None)
    closed = conversation(store)
    store.append(closed, NewEvent("ConversationResolved", ConversationResolved()))
    pstn, _ = channel(store, ScriptedSip())
    before = store.max_sequence()
    with pytest.raises(NoPhoneNumberError):
        asyncio.run(pstn.dial(unverified))
    with pytest.raises(ConversationClosedError):
        asyncio.run(pstn.dial(closed))
    with pytest.raises(ConversationClosedError):
        asyncio.run(pstn.dial(str(uuid4())))
    no_trunk = PstnChannel(
        PstnSettings(),
        HandoffService(store, signer=SIGNER),
        PhoneDirectory(store),
        voice=None,  # type: ignore[arg-type]
    )
    with pytest.raises(TrunkNotConfiguredError):
        asyncio.run(no_trunk.dial(unverified, PHONE))
    assert store.max_sequence() == before


def invite(caller: str | None, headers: dict[str, str] | None = None) -> IncomingInvite:
    return IncomingInvite("in-1", caller, headers or {}, MediaOffer(("127.0.0.1", 9), 0))


def test_inbound_call_from_the_verified_number_joins_without_a_challenge(store: Ledger) -> None:
    cid = conversation(store)
    pstn, _ = channel(store, ScriptedSip())
    assert asyncio.run(pstn.on_invite(invite(PHONE))) is not None
    last = store.read(cid)[-1]
    assert last.type == "LegOpened"
    assert last.data.channel == "pstn"  # type: ignore[attr-defined]
    assert not [e for e in store.read(cid) if e.leg_id == last.leg_id and "Verif" in e.type]
    # An unknown caller is refused and nothing is recorded.
    before = store.max_sequence()
    assert asyncio.run(pstn.on_invite(invite("+15550000000"))) is None
    assert asyncio.run(pstn.on_invite(invite(None))) is None
    assert store.max_sequence() == before


def test_inbound_call_with_a_token_and_a_forged_one(store: Ledger) -> None:
    cid = conversation(store, phone=None)
    service = HandoffService(store, signer=SIGNER)
    ticket = service.request_handoff(cid, "pstn")
    pstn, _ = channel(store, ScriptedSip())
    forged = ticket.token[:-3] + ("AAA" if not ticket.token.endswith("AAA") else "BBB")
    before = store.version(cid)
    assert (
        asyncio.run(pstn.on_invite(invite("+15550000000", {TOKEN_HEADER.lower(): forged}))) is None
    )
    assert store.version(cid) == before  # a forged token's claims are trusted for nothing
    headers = {TOKEN_HEADER.lower(): ticket.token, CONVERSATION_HEADER.lower(): cid}
    assert asyncio.run(pstn.on_invite(invite("+15550000000", headers))) is not None
    assert store.read(cid)[-1].type == "HandoffCompleted"
    # Single use: the same token again is refused.
    assert asyncio.run(pstn.on_invite(invite("+15550000000", headers))) is None
    assert store.read(cid)[-1].type == "VerificationFailed"
