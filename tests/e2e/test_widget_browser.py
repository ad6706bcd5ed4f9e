"""The widget in real headless Chromium: type into /embed, see the agent's reply arrive in the
thread, and keep a screenshot under test-artifacts/."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.api_server import ROOT, ApiServer, create_key

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser

# Runs in the page before the widget: keeps every text the status line shows (a momentary
# one is in the history even if no poll saw it), and holds the microphone request until the
# test releases it, as a visitor who has not yet answered the permission prompt would.
PAGE_PROBE = """
window.tlStatus = [];
new MutationObserver(() => {
  const line = document.querySelector('[role=status]');
  const text = line ? line.textContent : null;
  if (text !== null && window.tlStatus[window.tlStatus.length - 1] !== text) {
    window.tlStatus.push(text);
  }
}).observe(document, { subtree: true, childList: true, characterData: true });
const held = new Promise(release => { window.tlReleaseMic = release; });
const devices = navigator.mediaDevices;
const getUserMedia = devices.getUserMedia.bind(devices);
devices.getUserMedia = constraints => held.then(() => getUserMedia(constraints));
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ApiServer]:
    with ApiServer(f"sqlite:///{tmp_path / 'widget.db'}", tmp_path / "server.log") as srv:
        yield srv


@pytest.fixture
def page(tmp_path: Path) -> Iterator[object]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: run scripts/sysdeps.sh (make sysdeps)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 900, "height": 700},
        )
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_visitor_chats_in_the_embedded_widget(server: ApiServer, page: object) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.add_init_script(PAGE_PROBE)
    page.goto(f"{server.base_url}/embed")
    box = page.get_by_label("Your message")
    expect(box).to_be_visible()

    box.fill("Hello there")
    box.press("Enter")
    thread = page.get_by_role("log", name="Conversation")
    expect(thread.locator(".tl-visitor")).to_contain_text("Hello there", timeout=15_000)
    expect(thread.locator(".tl-agent").first).to_be_visible(timeout=15_000)
    reply = thread.locator(".tl-agent").first.inner_text()
    assert reply.strip()
    expect(page.get_by_role("status")).to_have_text("Connected", timeout=15_000)

    # A second turn arrives on the same live stream, in order.
    box.fill("I want to check my claim")
    page.get_by_role("button", name="Send").click()
    expect(thread.locator(".tl-visitor")).to_have_count(2, timeout=15_000)
    expect(thread.locator(".tl-agent")).to_have_count(2, timeout=15_000)
    positions = [
        int(p)
        for p in thread.locator("li").evaluate_all("items => items.map(i => i.dataset.position)")
    ]
    assert positions == sorted(positions)

    # An explicit request for a person makes the agent offer voice: the button appears, and
    # clicking it accepts the offer on the same conversation.
    voice = page.get_by_role("button", name="Switch to voice")
    expect(voice).to_be_hidden()
    box.fill("This is too complicated, can I talk to someone please?")
    box.press("Enter")
    expect(voice).to_be_visible(timeout=15_000)
    # What a voice module would receive (it listens on the same hook).
    page.evaluate("window.Threadline.on('handoff-accepted', d => { window.tlTicket = d.result; })")
    page.evaluate("window.Threadline.on('voice-stopped', () => { window.tlVoiceOver = true; })")
    voice.click()
    expect(page.get_by_role("button", name="Connecting voice…")).to_be_visible(timeout=15_000)
    page.wait_for_function("() => window.tlTicket !== undefined", timeout=15_000)
    ticket = page.evaluate("window.tlTicket")
    assert isinstance(ticket, dict)
    assert ticket["handoff_token"].startswith("tl1.")

    # The server dies and comes back: the widget reconnects by itself, resumes after the
    # last event it showed (no duplicates), and shows what was appended meanwhile — here
    # an adapter's voice leg and transcribed turn, marked as voice in the same thread.
    # The voice attempt is still waiting for the microphone when the server dies; it then
    # fails (this browser has no microphone) and hands the status line back: the stream is
    # down, so it must say "Reconnecting…", not "Connected".
    down = page.evaluate("window.tlStatus.length")
    server.kill()
    page.wait_for_function(
        "n => window.tlStatus.slice(n).includes('Reconnecting…')", arg=down, timeout=15_000
    )
    page.evaluate("window.tlReleaseMic()")
    page.wait_for_function("() => window.tlVoiceOver === true", timeout=15_000)
    while_down = page.evaluate("n => window.tlStatus.slice(n)", down)
    assert "Connected" not in while_down, while_down
    expect(page.get_by_role("status")).to_have_text("Reconnecting…")
    back = page.evaluate("window.tlStatus.length")
    server.start()
    cid = page.evaluate("window.Threadline.client.conversationId")
    key = create_key(server.database_url, name="voice-adapter")
    with server.client(key) as c:
        leg = {
            "event_id": str(uuid.uuid4()),
            "type": "LegOpened",
            "leg_id": "leg_voice",
            "data": {"channel": "webrtc"},
        }
        said = {
            "event_id": str(uuid.uuid4()),
            "type": "UtteranceTranscribed",
            "leg_id": "leg_voice",
            "data": {
                "role": "visitor",
                "text": "said by voice",
                "start_ms": 0,
                "end_ms": 900,
                "confidence": 0.9,
            },
        }
        for body in (leg, said):
            assert c.post(f"/v1/conversations/{cid}/events", json=body).status_code == 201
    page.wait_for_function(
        "n => window.tlStatus.slice(n).includes('Connected')", arg=back, timeout=20_000
    )
    expect(page.get_by_role("status")).to_have_text("Connected")
    spoken = thread.locator(".tl-visitor").filter(has_text="said by voice")
    expect(spoken).to_have_count(1, timeout=20_000)
    expect(spoken).to_contain_text("You · voice")
    expect(thread.locator(".tl-agent")).to_have_count(3)

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "widget-chat.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert errors == []
    assert re.search(r"\S", reply)
