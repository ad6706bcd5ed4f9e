"""An operator joins the visitor's voice call from the console, in real headless Chromium with
two browser contexts and fake microphones on both sides (the same speech file, each capture
starting at its own getUserMedia): the visitor switches to voice in the widget; the operator
joins the conversation, then the call; each side receives audio from the other (WebRTC
getStats, inbound-rtp energy); what the operator says is transcribed as theirs; the operator
leaves the call and hands back; the AI answers on the call again, opening with the
operator's words. Screenshots of the operator's view go to test-artifacts/console/."""

from __future__ import annotations

import asyncio
import time
import wave
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from harness.browser import PASSWORD, artifact, sign_in
from harness.voice_browser import (
    MIC_RATE,
    chat_until_offer,
    chromium_with_mic,
    events,
    switch_to_voice,
    voice_server,
    wait_for_event,
    wait_js,
)
from threadline.channels.console.wiring import open_accounts
from threadline.handoff.human import RECAP_LEAD

pytestmark = [pytest.mark.browser, pytest.mark.voice, pytest.mark.timeout(300)]

SPOKEN = "could you also send me the confirmation by email please"
ENERGY = """async (pc) => {
  let energy = 0;
  (await pc.getStats()).forEach(s => {
    if (s.type === "inbound-rtp" && s.kind === "audio") energy = s.totalAudioEnergy || 0;
  });
  return energy;
}"""


def talking_mic(path: Path, lead_s: float, repeats: int) -> Path:
    """Speech repeated with pauses, so that whoever captures it later still hears words."""
    from threadline.channels.voice.tts_piper import PiperTTS

    speech = asyncio.run(PiperTTS().synthesize(SPOKEN, MIC_RATE))
    pause = bytes(MIC_RATE * 2 * 3)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(MIC_RATE)
        w.writeframes(bytes(int(MIC_RATE * lead_s) * 2) + (speech + pause) * repeats)
    return path


def energy(page: Page, pc: str) -> float:
    return float(page.evaluate(f"() => ({ENERGY})({pc})"))


def _operator_heard(recorded: list[dict[str, Any]], words: tuple[str, ...]) -> bool:
    return any(
        e["type"] == "UtteranceTranscribed"
        and e["data"]["role"] == "operator"
        and not e["data"]["low_confidence"]
        and any(w in e["data"]["text"].lower() for w in words)
        for e in recorded
    )


def test_operator_joins_the_visitors_voice_call(tmp_path: Path) -> None:
    wav = talking_mic(tmp_path / "mic.wav", lead_s=6.0, repeats=8)
    with voice_server(tmp_path) as server, chromium_with_mic(wav) as browser:
        accounts = open_accounts(server.database_url)
        accounts.create("alice", PASSWORD)
        accounts.store.close()
        errors: list[str] = []
        visitor = browser.new_context().new_page()
        op = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
        for page in (visitor, op):
            page.on("pageerror", lambda e: errors.append(str(e)))

        visitor.goto(f"{server.base_url}/embed?tl_voice_processing=off")
        chat_until_offer(visitor)
        heard = switch_to_voice(visitor)
        cid, token = heard["conversationId"], heard["token"]

        sign_in(op, server.base_url, "alice")
        op.goto(f"{server.base_url}/console/conversations/{cid}")
        expect(op.locator("#handoff-summary")).not_to_be_empty(timeout=10_000)
        op.click("#join")
        expect(op.locator("#join-call")).to_be_visible(timeout=15_000)
        op.click("#join-call")
        wait_js(
            op, "() => window.operatorCall && window.operatorCall.connectionState === 'connected'"
        )
        wait_for_event(server, token, cid, "OperatorJoinedCall", within=10)
        expect(op.locator("#live-thread")).to_contain_text("joined the voice call", timeout=10_000)
        visitor_before = energy(visitor, "window.Threadline.voice.pc")

        # Each side receives audio from the other: the AI is off the call, so what the
        # visitor now hears is the operator's microphone.
        wait_js(op, f"async () => ({ENERGY})(window.operatorCall).then(e => e > 0.01)", 40)
        wait_js(
            visitor,
            f"async () => ({ENERGY})(window.Threadline.voice.pc)"
            f".then(e => e > {visitor_before} + 0.01)",
            40,
        )
        op.screenshot(path=artifact("console/call-joined.png"), full_page=True)
        # The AI said nothing after the operator joined: what it was saying then was cut and
        # recorded before OperatorJoinedCall (the join settles the leg's recorder first), so
        # an AgentSpoke after the join can only be a reply dropped unplayed.
        recorded = events(server, token, cid)
        kinds = [e["type"] for e in recorded]
        for spoke in recorded[kinds.index("OperatorJoinedCall") :]:
            if spoke["type"] == "AgentSpoke":
                assert spoke["data"]["first_audio_at"] is None, spoke

        # Leave once a whole sentence of the operator's has been heard: leaving mid-sentence
        # flushes only the words spoken so far, which on a loaded machine may be the first few.
        for _ in range(90):
            if _operator_heard(events(server, token, cid), ("confirmation", "email")):
                break
            time.sleep(1)
        op.click("#leave-call")
        wait_for_event(server, token, cid, "OperatorLeftCall", within=10)
        expect(op.locator("#join-call")).to_be_visible(timeout=10_000)
        op.click("#leave")
        expect(op.locator("#holder")).to_have_text(
            "The AI holds this conversation.", timeout=10_000
        )

        # What the operator said on the call was transcribed onto the stream as theirs.
        recorded = events(server, token, cid)
        kinds = [e["type"] for e in recorded]
        bridged = recorded[kinds.index("OperatorJoinedCall") : kinds.index("OperatorLeftCall")]
        operator_said = [
            e
            for e in bridged
            if e["type"] == "UtteranceTranscribed" and e["data"]["role"] == "operator"
        ]
        assert operator_said, kinds
        assert {e["actor"] for e in operator_said} == {"operator:alice"}
        assert all(e["data"]["model"] for e in operator_said)
        words = [e["data"]["text"] for e in operator_said if not e["data"]["low_confidence"]]
        assert any("confirmation" in t.lower() or "email" in t.lower() for t in words), words

        # Back with the AI: its next spoken answer comes on the same call, and opens with what
        # the operator was heard to say (a "say that again?" may come first).
        recap: dict[str, Any] | None = None
        for _ in range(120):
            after = events(server, token, cid)
            after = after[[e["type"] for e in after].index("OperatorLeft") :]
            recap = next(
                (
                    e
                    for e in after
                    if e["type"] == "AgentSpoke" and e["data"]["text"].startswith(RECAP_LEAD)
                ),
                None,
            )
            if recap is not None:
                break
            op.wait_for_timeout(500)
        assert recap is not None
        assert 'alice said: "' in recap["data"]["text"]
        assert words[-1] in recap["data"]["text"]
        op.screenshot(path=artifact("console/call-handed-back.png"), full_page=True)
        visitor.screenshot(path=artifact("console/call-visitor.png"))
        assert errors == []
