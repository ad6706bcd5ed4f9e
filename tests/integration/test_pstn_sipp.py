"""PSTN dial-out against a real SIP peer: sipp as the far end on loopback.

The chat happened (January claim, identity verified with the phone number); the agent dials
the verified phone through the "trunk" (sipp UAS). sipp refuses the call unless the INVITE
carries both X-Threadline headers, answers with PCMU, plays the visitor's reply as RTP and
hangs up. The voice pipeline is the real one (espeak-ng TTS, pocketsphinx STT).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from tests.support.pcap import udp_datagrams
from tests.support.sipp import sipp_available, start_uas
from threadline.channels.messaging.directory import PhoneDirectory
from threadline.channels.pstn.channel import PstnChannel
from threadline.channels.pstn.settings import PstnSettings
from threadline.handoff import tokens
from threadline.handoff.service import HandoffService
from threadline.handoff.signing import Signer
from threadline.ledger.envelope import NewEvent
from threadline.ledger.events import (
    AgentSpoke,
    ConversationStarted,
    HandoffCompleted,
    IdentityVerified,
    LegClosed,
    LegOpened,
    MessagePosted,
)
from threadline.ledger.store import Ledger, open_ledger

pytestmark = [
    pytest.mark.voice,
    pytest.mark.skipif(not sipp_available(), reason="sipp (Debian sip-tester) is not installed"),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
]

# The voice pipeline (channels/voice) is the one WebRTC uses; without it there is no leg to run.
pytest.importorskip("threadline.channels.voice.pipeline")

PHONE = "+15551230001"
SCENARIO = "uas_answer_stream_bye.xml"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    store = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield store
    store.close()


def chat_about_january_claim(ledger: Ledger) -> str:
    cid = str(uuid4())
    ledger.append_batch(
        cid,
        [
            NewEvent("ConversationStarted", ConversationStarted(channel="chat")),
            NewEvent("LegOpened", LegOpened(channel="chat"), leg_id="chat-1"),
            NewEvent(
                "MessagePosted",
                MessagePosted(role="visitor", text="Hi, I am asking about my January claim."),
                leg_id="chat-1",
            ),
            NewEvent(
                "IdentityVerified",
                IdentityVerified(method="kba", level=2, subject=f"tel:{PHONE}"),
                leg_id="chat-1",
            ),
            NewEvent(
                "MessagePosted",
                MessagePosted(role="visitor", text="Can someone call me about the January claim?"),
                leg_id="chat-1",
            ),
        ],
    )
    return cid


def visitor_wav(workdir: Path, lead_silence_s: float) -> None:
    """What the person on the phone says (8 kHz mu-law WAV for sipp's rtp_stream), after the
    agent's first sentence."""
    raw = workdir / "said.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), "yes please"], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", "8000", "-c", "1", "-e", "u-law", str(workdir / "visitor.wav"),
         "pad", str(lead_silence_s), "0.5"],
        check=True,
    )  # fmt: skip


def voice_factory(ledger: Ledger):  # type: ignore[no-untyped-def]
    from tests.support.voice_contract import visitor_voice
    from threadline.channels.voice.pipeline import VoicePipeline
    from threadline.channels.voice.stt_pocketsphinx import PocketsphinxSTT
    from threadline.channels.voice.vocabulary import build_vocabulary

    # A brisk voice keeps the test short; the first sentence must finish before the callee
    # talks (10.3 s after the answer), or it is (rightly) recorded as interrupted. At 220
    # words a minute it took 8.5-9 s (synthesis and RTP pacing stretch it under load): too
    # little margin. At 340 it ends after ~5 s, leaving the rest of the lead silence spare.
    stt, tts = PocketsphinxSTT(), visitor_voice(340)

    def make(conversation_id: str, leg_id: str, rate: int, context: object) -> VoicePipeline:
        async def record(event: NewEvent) -> None:
            await asyncio.to_thread(ledger.append, conversation_id, event)

        async def no_reply(turn: object) -> None:
            return None  # the agent's later turns are not what this test is about

        return VoicePipeline(
            leg_id=leg_id,
            stt=stt,
            tts=tts,
            on_turn=no_reply,
            record=record,
            vocabulary=build_vocabulary(["yes please", "no thanks"], ["january claim"]),
            output_rate=rate,
        )

    return make


def test_dial_out_through_sipp(ledger: Ledger, tmp_path: Path) -> None:
    cid = chat_about_january_claim(ledger)
    visitor_wav(tmp_path, lead_silence_s=10.5)
    sipp = start_uas(SCENARIO, tmp_path, hold_ms=14_000)
    capture = None
    pcap = tmp_path / "lo.pcap"
    if shutil.which("tcpdump") and os.geteuid() == 0:
        capture = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-n", "-U", "-w", str(pcap), "udp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
    signer = Signer(b"p" * 32, tokens.PURPOSE)
    handoffs = HandoffService(ledger, signer=signer)
    settings = PstnSettings(
        trunk=f"127.0.0.1:{sipp.port}",
        sip_port=0,
        rtp_port_min=31000,
        rtp_port_max=31999,
        answer_timeout_s=15,
    )
    channel = PstnChannel(settings, handoffs, PhoneDirectory(ledger), voice=voice_factory(ledger))

    async def scenario() -> None:
        await channel.start()
        try:
            started = await channel.dial(cid)  # no number: the verified one
            assert started.number == PHONE
            await asyncio.wait_for(channel.wait_idle(), timeout=40)
        finally:
            await channel.stop()

    try:
        asyncio.run(scenario())
        assert sipp.wait(timeout_s=20) == 0, (tmp_path / "sipp.out").read_text()
    finally:
        sipp.stop()
        if capture is not None:
            capture.send_signal(signal.SIGINT)
            capture.wait(timeout=10)

    # sipp saw both headers on the INVITE (it refuses the call otherwise) and logged them.
    logged = sipp.logs().split()
    assert logged[:2] == ["INVITE", cid]
    assert logged[2] == "token="
    assert logged[3].startswith("tl1.")

    events = ledger.read(cid)
    types = [e.type for e in events]
    pstn_leg = next(e for e in events if isinstance(e.data, LegOpened) and e.data.channel == "pstn")
    assert pstn_leg.data.transport_ref is not None
    assert pstn_leg.data.transport_ref.startswith(f"tel:{PHONE};call-id=")
    leg = pstn_leg.leg_id
    assert "HandoffOffered" in types
    assert "HandoffAccepted" in types
    verified = [e.data for e in events if e.leg_id == leg and isinstance(e.data, IdentityVerified)]
    assert [(v.method, v.level) for v in verified] == [
        ("handoff_token", 2)
    ]  # carried, not re-asked
    assert not [e for e in events if e.leg_id == leg and e.type == "VerificationFailed"]
    completed = next(e.data for e in events if isinstance(e.data, HandoffCompleted))
    assert "january" in completed.first_utterance.lower()
    spoken = [e.data for e in events if e.leg_id == leg and isinstance(e.data, AgentSpoke)]
    assert spoken, types
    assert spoken[0].text == completed.first_utterance
    assert not spoken[0].interrupted
    closed = [e.data for e in events if e.leg_id == leg and isinstance(e.data, LegClosed)]
    assert [c.reason for c in closed] == ["remote hangup"]
    assert [e.type for e in events if e.leg_id == leg][-1] == "LegClosed"
    # RTP flowed both ways: our frames out, sipp's stream in (decoded by the pipeline).
    frames_out, frames_in = channel.media_stats[leg or ""]
    assert frames_out > 200  # > 4 s of agent audio and silence
    assert frames_in > 100
    heard = [e for e in events if e.leg_id == leg and e.type == "UtteranceTranscribed"]
    assert [e.data.text for e in heard] == ["yes please"]  # type: ignore[attr-defined]

    if capture is not None:
        # Capture proof (tcpdump on lo, root only): the X- headers are on the wire. lo is
        # shared with whatever else runs on the machine: only datagrams to this test's sipp.
        datagrams = udp_datagrams(pcap)
        invites = [
            d.payload
            for d in datagrams
            if d.dst_port == sipp.port and d.payload.startswith(b"INVITE sip:+15551230001@")
        ]
        assert invites, "no INVITE captured"
        assert f"X-Threadline-Conversation-Id: {cid}".encode() in invites[0]
        assert b"X-Threadline-Handoff-Token: tl1." in invites[0]
        rtp_to_sipp = [d for d in datagrams if d.src_port % 2 == 0 and 31000 <= d.src_port < 32000]
        assert len(rtp_to_sipp) > 200


def test_inbound_call_from_the_verified_number(ledger: Ledger, tmp_path: Path) -> None:
    """sipp calls Threadline from the conversation's verified number: the call joins the
    conversation with no challenge, RTP flows both ways, and the caller's BYE closes the leg."""
    import socket

    from tests.support.uvicorn_thread import free_port

    cid = chat_about_january_claim(ledger)
    visitor_wav(tmp_path, lead_silence_s=0.5)
    sip_port = free_port(socket.SOCK_DGRAM)
    settings = PstnSettings(sip_port=sip_port, rtp_port_min=33000, rtp_port_max=33999)
    handoffs = HandoffService(ledger, signer=Signer(b"q" * 32, tokens.PURPOSE))
    channel = PstnChannel(settings, handoffs, PhoneDirectory(ledger), voice=voice_factory(ledger))

    async def scenario() -> int:
        await channel.start()
        try:
            # The caller hangs up after a fixed time; the frames sent in it depend on how
            # punctually a loaded machine runs the 20 ms sender (4 s gave 95 of 200 once).
            sipp = start_uas(
                "uac_call_in_bye.xml",
                tmp_path,
                hold_ms=6_000,
                target=f"127.0.0.1:{sip_port}",
                caller=PHONE,
            )
            try:
                deadline = asyncio.get_running_loop().time() + 30
                while sipp.process.poll() is None:
                    assert asyncio.get_running_loop().time() < deadline, "sipp did not finish"
                    await asyncio.sleep(0.1)
                await asyncio.wait_for(channel.wait_idle(), timeout=20)
                return sipp.process.returncode
            finally:
                sipp.stop()
        finally:
            await channel.stop()

    assert asyncio.run(scenario()) == 0, (tmp_path / "sipp.out").read_text()
    events = ledger.read(cid)
    opened = [e for e in events if isinstance(e.data, LegOpened) and e.data.channel == "pstn"]
    assert len(opened) == 1
    leg = opened[0].leg_id
    assert opened[0].data.transport_ref is not None
    assert opened[0].data.transport_ref.startswith(f"tel:{PHONE};call-id=")
    on_leg = [e for e in events if e.leg_id == leg]
    assert not [e for e in on_leg if "Verif" in e.type]  # the number was verified: no challenge
    assert any(isinstance(e.data, AgentSpoke) for e in on_leg)
    assert [e.data.reason for e in on_leg if isinstance(e.data, LegClosed)] == ["remote hangup"]
    frames_out, frames_in = channel.media_stats[leg or ""]
    assert frames_out > 100
    assert frames_in > 50
