"""A person takes over, in real headless Chromium with two browser contexts: the visitor in
the widget asks for a person; the operator signs in, marks themselves available, sees the
queue entry arrive live, reads what the AI knew, joins, exchanges messages with the visitor
(each side sees the other's words live), hands back; the AI's next reply carries what the
operator said. Screenshots of the operator's view go to test-artifacts/console/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from harness.api_server import ApiServer
from harness.browser import PASSWORD, artifact, chromium, sign_in
from threadline.channels.console.wiring import open_accounts

pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ApiServer]:
    url = f"sqlite:///{tmp_path / 'takeover.db'}"
    accounts = open_accounts(url)
    accounts.create("alice", PASSWORD)
    accounts.store.close()
    with ApiServer(url, tmp_path / "server.log") as srv:
        yield srv


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def watch_errors(page: Page, errors: list[str]) -> Page:
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page


def test_operator_takes_over_and_hands_back(browser: Browser, server: ApiServer) -> None:
    errors: list[str] = []
    operator_ctx = browser.new_context(viewport={"width": 1400, "height": 1100})
    visitor_ctx = browser.new_context(viewport={"width": 900, "height": 700})
    op = watch_errors(operator_ctx.new_page(), errors)
    visitor = watch_errors(visitor_ctx.new_page(), errors)

    sign_in(op, server.base_url, "alice")
    expect(op.locator("#queue-empty")).to_be_visible()
    op.check("#available")
    expect(op.locator("#operators-online")).to_contain_text("alice", timeout=10_000)

    visitor.goto(f"{server.base_url}/embed")
    box = visitor.get_by_label("Your message")
    thread = visitor.get_by_role("log", name="Conversation")
    box.fill("I have a question about my January claim")
    box.press("Enter")
    expect(thread.locator(".tl-agent")).to_have_count(1, timeout=15_000)
    box.fill("Can I speak to a person please?")
    box.press("Enter")
    expect(thread.locator(".tl-agent").nth(1)).to_contain_text(
        "number 1 in the queue", timeout=15_000
    )
    cid = visitor.evaluate("window.Threadline.client.conversationId")

    # The queue entry arrives in the operator's page without a reload.
    row = op.locator(f'#queue tbody tr[data-conversation="{cid}"]')
    expect(row).to_be_visible(timeout=10_000)
    expect(row).to_contain_text("Chat")
    expect(row).to_contain_text("January claim")
    op.screenshot(path=artifact("console/takeover-queue.png"), full_page=True)

    row.get_by_role("link", name="Open").click()
    expect(op.locator("#handoff-summary")).to_contain_text("January claim", timeout=10_000)
    expect(op.locator("#agent-context")).to_contain_text("not verified")
    expect(op.locator("#holder")).to_have_text("The AI holds this conversation.")
    op.click("#join")
    expect(op.locator("#holder")).to_contain_text("You hold this conversation", timeout=10_000)
    expect(thread.locator(".tl-system").filter(has_text="alice joined")).to_be_visible(
        timeout=15_000
    )

    # The visitor types; the operator sees it live and the AI says nothing.
    box.fill("Hello, thanks for joining")
    box.press("Enter")
    live = op.locator("#live-thread")
    expect(live).to_contain_text("visitor: Hello, thanks for joining", timeout=10_000)
    said = "Your January claim CLM-4821 was paid on 3 February"
    op.fill("#operator-text", said)
    op.press("#operator-text", "Enter")
    expect(live).to_contain_text(f"alice: {said}", timeout=10_000)
    operator_line = thread.locator(".tl-operator")
    expect(operator_line).to_contain_text(said, timeout=15_000)
    expect(operator_line).to_contain_text("alice · chat")
    assert thread.locator(".tl-agent").count() == 2  # no AI reply while alice holds it
    op.screenshot(path=artifact("console/takeover-joined.png"), full_page=True)

    op.click("#leave")
    expect(op.locator("#holder")).to_have_text("The AI holds this conversation.", timeout=10_000)
    expect(thread.locator(".tl-system").filter(has_text="handed you back")).to_be_visible(
        timeout=15_000
    )
    box.fill("Great, anything else I should know?")
    box.press("Enter")
    resumed = thread.locator(".tl-agent").nth(2)
    expect(resumed).to_contain_text(said, timeout=15_000)
    expect(live).to_contain_text("handed back to the AI")
    op.screenshot(path=artifact("console/takeover-handed-back.png"), full_page=True)
    visitor.screenshot(path=artifact("console/takeover-visitor.png"))

    operator_ctx.close()
    visitor_ctx.close()
    assert errors == []
