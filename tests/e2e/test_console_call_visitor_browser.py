"""The operator offers a chat visitor a call with them, in real headless Chromium with two
browser contexts and fake microphones: the visitor asks for a person in the widget; the
operator joins the chat and presses "Call the visitor"; the widget shows whose call it is;
the visitor takes it; the console joins the new leg by itself; each side receives the
other's audio (inbound-rtp energy); the AI said only who was joining; what the operator says
is recorded as theirs. Screenshots go to test-artifacts/console/."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from harness.browser import PASSWORD, artifact, sign_in
from harness.voice_browser import (
    chromium_with_mic,
    events,
    switch_to_voice,
    voice_server,
    wait_for_event,
    wait_js,
)
from tests.e2e.test_console_call_browser import ENERGY, energy, talking_mic
from threadline.channels.console.wiring import open_accounts
from threadline.handoff.human import OPERATOR_CALL, OPERATOR_CALL_OPENING

pytestmark = [pytest.mark.browser, pytest.mark.voice, pytest.mark.timeout(300)]


def test_operator_calls_the_chat_visitor(tmp_path: Path) -> None:
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
        visitor.fill("#tl-input", "is there a real human I can talk to")
        visitor.press("#tl-input", "Enter")
        thread = visitor.get_by_role("log", name="Conversation")
        expect(thread.locator(".tl-agent")).to_have_count(1, timeout=15_000)
        cid = visitor.evaluate("window.Threadline.client.conversationId")
        token = visitor.evaluate("window.Threadline.client.token")

        sign_in(op, server.base_url, "alice")
        op.goto(f"{server.base_url}/console/conversations/{cid}")
        # The page's buttons are wired once it has loaded what the AI knew.
        expect(op.locator("#handoff-summary")).not_to_be_empty(timeout=10_000)
        op.click("#join")
        expect(op.locator("#holder")).to_contain_text("You hold this conversation", timeout=10_000)
        expect(op.locator("#call-visitor")).to_be_visible(timeout=15_000)
        op.click("#call-visitor")
        offered = wait_for_event(server, token, cid, "HandoffOffered", within=10)
        assert offered[-1]["data"]["reason"] == OPERATOR_CALL
        expect(op.locator("#live-thread")).to_contain_text(
            "alice offered the visitor a call", timeout=10_000
        )

        # The widget says whose call it is; taking it opens the leg like any voice offer.
        button = visitor.locator(".tl-voice:not(.tl-hangup)")
        expect(button).to_have_text("Take the call with alice", timeout=15_000)
        expect(thread).to_contain_text("alice would like to call you")
        visitor.screenshot(path=artifact("console/call-visitor-offer.png"))
        switch_to_voice(visitor)

        # The console joins the new leg by itself (no second click).
        wait_js(
            op,
            "() => window.operatorCall && window.operatorCall.connectionState === 'connected'",
            40,
        )
        wait_for_event(server, token, cid, "OperatorJoinedCall", within=15)
        visitor_before = energy(visitor, "window.Threadline.voice.pc")
        wait_js(op, f"async () => ({ENERGY})(window.operatorCall).then(e => e > 0.01)", 40)
        wait_js(
            visitor,
            f"async () => ({ENERGY})(window.Threadline.voice.pc)"
            f".then(e => e > {visitor_before} + 0.01)",
            40,
        )
        op.screenshot(path=artifact("console/call-visitor-joined.png"), full_page=True)

        # What the operator says is recorded as theirs; the AI said only who was joining.
        for _ in range(120):
            recorded = events(server, token, cid)
            theirs = [
                e
                for e in recorded
                if e["type"] == "UtteranceTranscribed" and e["data"]["role"] == "operator"
            ]
            if theirs:
                break
            op.wait_for_timeout(500)
        assert theirs, [e["type"] for e in recorded]
        assert theirs[0]["actor"] == "operator:alice"
        ai_said = [e["data"]["text"] for e in recorded if e["type"] == "AgentSpoke"]
        assert ai_said == [OPERATOR_CALL_OPENING]
        # The visitor's thread shows the operator's transcribed words under their name.
        spoken = thread.locator(".tl-operator").first
        expect(spoken).to_contain_text("alice · voice", timeout=15_000)
        expect(spoken).to_contain_text(theirs[0]["data"]["text"])
        visitor.screenshot(path=artifact("console/call-visitor-thread.png"))
        op.click("#leave-call")
        wait_for_event(server, token, cid, "OperatorLeftCall", within=10)
        assert errors == []
