"""PSTN dial-out as `threadline serve` wires it: a real server process (bootstrap turns the
channel on because THREADLINE_PSTN_TRUNK is set) and sipp as the far end on loopback.

The visitor verifies in chat (the seeded demo member, whose phone is on file), asks for a
phone call through the API; the server dials sipp with both X-Threadline headers, the call
is answered, the server's voice pipeline (the WebRTC one: same providers, same agent) speaks
the first utterance about the chat topic, hears the callee over RTP, and sipp's BYE closes the
leg. Everything is read back through the API's event stream.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.api_server import ApiServer
from harness.voice_browser import seed
from tests.support.sipp import sipp_available, start_uas
from tests.support.uvicorn_thread import free_port
from threadline.agent.sqltools.seed import DEMO_MEMBER
from threadline.app.demo import CHAT_BEFORE

pytestmark = [
    pytest.mark.voice,
    pytest.mark.timeout(90),
    pytest.mark.skipif(not sipp_available(), reason="sipp (Debian sip-tester) is not installed"),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
    pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed"),
]

SCENARIO = "uas_answer_stream_bye.xml"
# What the callee says once the agent's first sentence is over (one of the chat's topics,
# so it is within the recognition vocabulary the server builds from the replayed context).
CALLEE_SAYS = "when will my january claim be paid"
# The first utterance (a restatement of the chat, piper at double speed) lasts up to ~15 s;
# the callee waits until it is over.
LEAD_SILENCE_S = 20.0
HOLD_MS = 24_000


def callee_wav(workdir: Path) -> None:
    """sipp's rtp_stream file: 8 kHz mu-law, silence while the agent speaks, then a question."""
    raw = workdir / "said.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), CALLEE_SAYS], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", "8000", "-c", "1", "-e", "u-law", str(workdir / "visitor.wav"),
         "pad", str(LEAD_SILENCE_S), "0.5"],
        check=True,
    )  # fmt: skip


def eventually(check: Callable[[], Any], within_s: float, what: str) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_pstn_handoff_through_the_served_api(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'threadline.db'}"
    seed(database_url)
    callee_wav(tmp_path)
    sipp = start_uas(SCENARIO, tmp_path, hold_ms=HOLD_MS)
    server = ApiServer(
        database_url,
        tmp_path / "server.log",
        access_log=False,
        THREADLINE_PSTN_TRUNK=f"127.0.0.1:{sipp.port}",
        THREADLINE_PSTN_SIP_PORT=str(free_port(socket.SOCK_DGRAM)),
        THREADLINE_PSTN_RTP_PORT_MIN="34000",
        THREADLINE_PSTN_RTP_PORT_MAX="34999",
        THREADLINE_PSTN_ANSWER_TIMEOUT_S="10",
        # A brisk voice keeps the call short.
        THREADLINE_ESPEAK_WORDS_PER_MINUTE="350",
        # piper (the default TTS) at double speed: it has finished before the callee speaks.
        THREADLINE_PIPER_LENGTH_SCALE="0.5",
    )
    try:
        server.start()
        with server.client() as http:
            conv = http.post("/v1/conversations", json={"channel": "chat"}).json()
        cid = conv["conversation_id"]
        with server.client(conv["visitor_token"]) as http:
            for line in CHAT_BEFORE[:2]:  # the topic, then the identity check
                said = http.post(f"/v1/conversations/{cid}/messages", json={"text": line})
                assert said.status_code in (200, 201), said.text

            def events() -> list[dict[str, Any]]:
                page = http.get(f"/v1/conversations/{cid}/events?limit=1000")
                assert page.status_code == 200, page.text
                return list(page.json()["events"])

            verified = [e for e in events() if e["type"] == "IdentityVerified"]
            assert {e["data"]["method"] for e in verified} >= {"kba", "phone_on_file"}

            ticket = http.post(
                f"/v1/conversations/{cid}/handoffs",
                json={"channel": "pstn", "phone": DEMO_MEMBER.phone},
            )
            assert ticket.status_code == 201, ticket.text
            assert ticket.json()["number"] == DEMO_MEMBER.phone
            assert ticket.json()["level"] == 2

            def pstn_leg() -> str | None:
                for e in events():
                    if e["type"] == "LegOpened" and e["data"]["channel"] == "pstn":
                        return str(e["leg_id"])
                return None

            leg = eventually(pstn_leg, 15, "the call was not answered")

            def closed() -> list[dict[str, Any]] | None:
                on_leg = [e for e in events() if e["leg_id"] == leg]
                return on_leg if on_leg[-1]["type"] == "LegClosed" else None

            on_leg = eventually(closed, HOLD_MS / 1000 + 15, "the leg was not closed")
            stream = events()
        assert sipp.wait(timeout_s=20) == 0, (tmp_path / "sipp.out").read_text()
    finally:
        sipp.stop()
        server.stop()

    # The INVITE carried both headers (sipp refuses the call otherwise) and sipp logged them.
    logged = sipp.logs().split()
    assert logged[:2] == ["INVITE", cid], sipp.logs()
    assert logged[2:3] == ["token="]
    assert logged[3] == ticket.json()["handoff_token"]

    types = [e["type"] for e in on_leg]
    assert types[0] == "LegOpened"
    assert on_leg[0]["data"]["transport_ref"].startswith(f"tel:{DEMO_MEMBER.phone};call-id=")
    # Identity carried by the signed token at the chat's level, never asked again.
    assert [(e["data"]["method"], e["data"]["level"]) for e in on_leg if "Verif" in e["type"]] == [
        ("handoff_token", 2)
    ]
    completed = next(e["data"] for e in stream if e["type"] == "HandoffCompleted")
    assert "january" in completed["first_utterance"].lower()
    spoken = [e["data"] for e in on_leg if e["type"] == "AgentSpoke"]
    assert spoken, types
    assert spoken[0]["text"] == completed["first_utterance"]
    assert not spoken[0]["interrupted"], spoken[0]
    # The callee's audio came back over RTP into the same pipeline (VAD, STT with the chat's
    # vocabulary): a pstn-leg utterance. Its words are not asserted: pocketsphinx's 16 kHz
    # model on band-limited G.711 audio is unreliable (see docs/messaging.md).
    heard = [e["data"] for e in on_leg if e["type"] == "UtteranceTranscribed"]
    assert len(heard) == 1, (heard, server.log())
    assert heard[0]["text"]
    assert heard[0]["start_ms"] >= LEAD_SILENCE_S * 1000 - 500  # the silence was not speech
    assert on_leg[-1]["data"]["reason"] == "remote hangup"
    assert types.count("LegClosed") == 1
