"""PSTN linking across two `threadline serve` replicas on one PostgreSQL (issue 18): the demo
member verifies in chat through replica A (the phone on file becomes a verified identity of
that conversation), then phones replica B — a real SIP call from sipp, From user =
DEMO_MEMBER.phone — and B joins the call to the conversation A recorded, with no challenge.

B's phone directory is a fold over the shared global log caught up on every lookup
(channels/messaging/directory.py); this is the call path that depends on it. Both replicas
run the PSTN channel (THREADLINE_PSTN_TRUNK set), each with its own SIP port and RTP range,
as two replicas on one host would.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.api_server import ApiServer, create_key
from harness.postgres import PostgresCluster
from tests.support.sipp import sipp_available, start_uas
from tests.support.uvicorn_thread import free_port
from threadline.agent.sqltools.seed import DEMO_MEMBER
from threadline.app.demo import CHAT_BEFORE

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.voice,
    pytest.mark.timeout(150),
    pytest.mark.skipif(not sipp_available(), reason="sipp (Debian sip-tester) is not installed"),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
    pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed"),
]

# The caller hangs up after this long: long enough for B to load its speech models (the
# servers under test load them on the first call) and speak part of the first utterance.
HOLD_MS = 10_000


def caller_wav(workdir: Path) -> None:
    """sipp's rtp_stream file (8 kHz mu-law): a short answer after a pause."""
    raw = workdir / "said.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), "yes please"], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", "8000", "-c", "1", "-e", "u-law", str(workdir / "visitor.wav"),
         "pad", "1.0", "0.5"],
        check=True,
    )  # fmt: skip


def seed_tools(database_url: str) -> None:
    """The demo member's tables (the agent's identity check reads them) in the shared database."""
    import sys

    from harness.api_server import ROOT, server_env

    subprocess.run(
        [sys.executable, "-m", "threadline.app.cli", "seed"],
        cwd=ROOT,
        env=server_env(database_url),
        capture_output=True,
        timeout=120,
        check=True,
    )


def pstn_env(rtp_min: int) -> dict[str, str]:
    return {
        # Only turns the channel on: nothing dials out in this test.
        "THREADLINE_PSTN_TRUNK": f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}",
        "THREADLINE_PSTN_SIP_PORT": str(free_port(socket.SOCK_DGRAM)),
        "THREADLINE_PSTN_RTP_PORT_MIN": str(rtp_min),
        "THREADLINE_PSTN_RTP_PORT_MAX": str(rtp_min + 999),
        "THREADLINE_ESPEAK_WORDS_PER_MINUTE": "350",
        "THREADLINE_PIPER_LENGTH_SCALE": "0.5",
    }


def eventually(check: Callable[[], Any], within_s: float, what: str) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_a_call_to_b_from_the_phone_verified_through_a_joins_that_conversation(
    postgres_cluster: PostgresCluster, tmp_path: Path
) -> None:
    database_url = postgres_cluster.create_database(f"pstn_{uuid.uuid4().hex[:12]}")
    seed_tools(database_url)
    key = create_key(database_url, name="adapter")
    caller_wav(tmp_path)
    env_a, env_b = pstn_env(35000), pstn_env(36000)
    a = ApiServer(database_url, tmp_path / "a.log", access_log=False, **env_a)
    b = ApiServer(database_url, tmp_path / "b.log", access_log=False, **env_b)
    with a, b:
        with a.client() as http:
            conv = http.post("/v1/conversations", json={"channel": "chat"}).json()
        cid = conv["conversation_id"]
        with a.client(conv["visitor_token"]) as http:
            for line in CHAT_BEFORE[:2]:  # the topic, then the identity check
                said = http.post(f"/v1/conversations/{cid}/messages", json={"text": line})
                assert said.status_code in (200, 201), said.text

        def events() -> list[dict[str, Any]]:
            with a.client(key) as http:  # read back through A: what B appended is shared
                page = http.get(f"/v1/conversations/{cid}/events", params={"limit": 1000})
            assert page.status_code == 200, page.text
            return list(page.json()["events"])

        verified = [e for e in events() if e["type"] == "IdentityVerified"]
        assert f"tel:{DEMO_MEMBER.phone}" in {e["data"]["subject"] for e in verified}, verified
        before = len(events())

        # A number verified nowhere is refused (403): the directory, not sipp, decides.
        stranger_dir = tmp_path / "stranger"
        stranger_dir.mkdir()
        shutil.copy(tmp_path / "visitor.wav", stranger_dir / "visitor.wav")
        stranger = start_uas(
            "uac_call_in_bye.xml",
            stranger_dir,
            hold_ms=1_000,
            target=f"127.0.0.1:{env_b['THREADLINE_PSTN_SIP_PORT']}",
            caller="+15550009999",
        )
        try:  # sipp logs the unexpected answer and waits on; the answer is what counts
            eventually(lambda: "403 Forbidden" in stranger.errors(), 30, "no 403 for a stranger")
        finally:
            stranger.stop()
        assert len(events()) == before

        sipp = start_uas(
            "uac_call_in_bye.xml",
            tmp_path,
            hold_ms=HOLD_MS,
            target=f"127.0.0.1:{env_b['THREADLINE_PSTN_SIP_PORT']}",
            caller=DEMO_MEMBER.phone,
        )
        try:
            done = sipp.wait(timeout_s=HOLD_MS / 1000 + 40)
            # B refuses (403) a call it cannot link: sipp then exits non-zero.
            assert done == 0, (tmp_path / "sipp.out").read_text() + b.log()
        finally:
            sipp.stop()

        def closed() -> list[dict[str, Any]] | None:
            stream = events()
            legs = [
                e["leg_id"]
                for e in stream
                if e["type"] == "LegOpened" and e["data"]["channel"] == "pstn"
            ]
            if not legs:
                return None
            on_leg = [e for e in stream if e["leg_id"] == legs[0]]
            return on_leg if on_leg[-1]["type"] == "LegClosed" else None

        on_leg = eventually(closed, 20, "the call's leg was not closed")
        stream = events()
        log_b = b.log()

    # The one PSTN leg is in the conversation verified through A, opened by B's SIP agent.
    pstn = [e for e in stream if e["type"] == "LegOpened" and e["data"]["channel"] == "pstn"]
    assert len(pstn) == 1, stream
    assert pstn[0]["position"] > before
    assert pstn[0]["data"]["transport_ref"].startswith(f"tel:{DEMO_MEMBER.phone};call-id=")
    # The number is the conversation's verified one: no challenge, no identity event.
    assert not [e for e in on_leg if "Verif" in e["type"]], on_leg
    assert any(e["type"] == "AgentSpoke" for e in on_leg), (on_leg, log_b)
    assert [e["data"]["reason"] for e in on_leg if e["type"] == "LegClosed"] == ["remote hangup"]
