"""The console in real headless Chromium against a real server (uvicorn on loopback, SQLite):
lanes and handoff markers of a chat → voice → chat conversation, the hash-chain check
flagging a tampered event, point-in-time replay, PII masking and the audit export."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from harness.api_server import ROOT, ApiServer, server_env
from harness.browser import PASSWORD, artifact, chromium, sign_in
from tests.support import console_seed
from threadline.channels.console.wiring import open_accounts
from threadline.ledger import audit
from threadline.ledger.store import open_ledger
from threadline.projections.metrics import build_metrics
from threadline.projections.transcript import build_transcript

pytestmark = pytest.mark.browser

CVC = "conv-chat-voice-chat"


@pytest.fixture(scope="module")
def db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("console-e2e") / "threadline.db"
    ledger = open_ledger(f"sqlite:///{path}")
    try:
        console_seed.population(ledger)
    finally:
        ledger.close()
    open_accounts(f"sqlite:///{path}").create("ops", PASSWORD)
    return path


@pytest.fixture(scope="module")
def server(db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with ApiServer(f"sqlite:///{db_path}", tmp_path_factory.mktemp("log") / "server.log") as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Browser, server: ApiServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1500, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, server.base_url, "ops")
    yield page
    context.close()
    assert errors == []


def open_conversation(page: Page, server: ApiServer, cid: str) -> None:
    page.goto(f"{server.base_url}/console/conversations/{cid}")
    expect(page.locator("#timeline tbody tr").first).to_be_visible()


def test_login_form_guards_the_console(browser: Browser, server: ApiServer) -> None:
    context = browser.new_context()
    page = context.new_page()
    response = page.goto(f"{server.base_url}/console/dashboard")
    assert response is not None
    assert response.status == 401
    page.fill("#name", "ops")
    page.fill("#password", "wrong password, surely")
    page.click("button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("wrong operator name or password")
    page.screenshot(path=artifact("console/login-refused.png"))
    context.close()


def test_list_searches_and_counts(page: Page, server: ApiServer) -> None:
    expect(page.locator("#conversations tbody tr")).to_have_count(10)
    expect(page.locator('.count[data-channel="webrtc"] dd')).to_have_text("4")
    expect(page.locator('.count[data-status="open"] dd')).to_have_text("2")
    page.select_option("#channel", "sms")
    page.click("#search button[type=submit]")
    expect(page.locator("#conversations tbody tr")).to_have_count(1)
    expect(page.locator("#conversations tbody tr")).to_have_attribute(
        "data-conversation", "conv-sms-1"
    )
    page.screenshot(path=artifact("console/list-sms.png"), full_page=True)


def test_chat_voice_chat_timeline_shows_every_lane_and_the_handoff(
    page: Page, server: ApiServer, db_path: Path
) -> None:
    open_conversation(page, server, CVC)
    lanes = page.locator("#timeline thead th.lane")
    expect(lanes).to_have_count(3)
    assert [lanes.nth(i).get_attribute("data-channel") for i in range(3)] == [
        "conversation",
        "chat",
        "webrtc",
    ]
    rows = page.locator("#timeline tbody tr")
    expect(rows).to_have_count(22)
    # Handoff steps are marked across all lanes, in the table and on the time axis.
    markers = page.locator("#timeline tr.handoff-marker")
    expect(markers).to_have_count(3)
    assert [markers.nth(i).get_attribute("data-type") for i in range(3)] == [
        "HandoffOffered",
        "HandoffAccepted",
        "HandoffCompleted",
    ]
    expect(page.locator("#overview line.handoff-line")).to_have_count(3)
    expect(page.locator("#overview circle.dot")).to_have_count(22)
    # Chat, then the voice leg, then chat again.
    lane_of = {
        int(rows.nth(i).get_attribute("data-position") or 0): rows.nth(i).get_attribute("data-lane")
        for i in range(22)
    }
    assert lane_of[3] == "chat-1"
    assert {lane_of[p] for p in range(13, 20)} == {"voice-1"}
    assert lane_of[20] == "chat-1"
    voice_cell = page.locator('tr[data-position="16"] td[data-lane="voice-1"] button.event')
    expect(voice_cell).to_contain_text("yes why is it pending")
    expect(page.locator('tr[data-position="17"] .flag-interrupted')).to_be_visible()
    expect(page.locator('tr[data-position="7"]')).to_contain_text("CLM-4821")
    expect(page.locator('tr[data-position="10"]')).to_contain_text("can I talk to someone")
    # Click an event: its envelope and hash, the ledger's own.
    page.click('tr[data-position="14"] button.event')
    stored = open_ledger(f"sqlite:///{db_path}").read(CVC, after=13, upto=14)[0]
    expect(page.locator("#details-hash")).to_have_text(stored.hash)
    expect(page.locator("#details-prev-hash")).to_have_text(stored.prev_hash)
    expect(page.locator("#details-envelope")).to_contain_text('"type": "HandoffCompleted"')
    page.screenshot(path=artifact("console/timeline-chat-voice-chat.png"), full_page=True)


def test_replay_slider_shows_the_conversation_as_of_a_position(
    page: Page, server: ApiServer, db_path: Path
) -> None:
    open_conversation(page, server, CVC)
    slider = page.locator("#replay-slider")
    slider.fill("12")  # range inputs take fill(); fires input and change
    expect(page.locator("#replay-position")).to_have_text("12 of 22")
    expect(page.locator("#as-of")).to_have_attribute("data-position", "12")
    expect(page.locator("#timeline tbody tr.future")).to_have_count(10)
    events = open_ledger(f"sqlite:///{db_path}").read(CVC, upto=12)
    expected = build_transcript(events)
    expect(page.locator("#as-of ol.transcript li")).to_have_count(len(expected.entries))
    expect(page.locator('#as-of [data-projection="identity"]')).to_be_attached()
    expect(page.locator('#as-of [data-projection="context"]')).to_be_attached()
    page.screenshot(path=artifact("console/replay-position-12.png"), full_page=True)


def test_pii_masking_toggle(page: Page, server: ApiServer) -> None:
    open_conversation(page, server, CVC)
    expect(page.locator("#mask-toggle")).to_be_checked()
    assert "alice@example.com" not in page.locator("#timeline").inner_text()
    page.uncheck("#mask-toggle")
    expect(page.locator('tr[data-position="5"]')).to_contain_text("alice@example.com")
    page.check("#mask-toggle")
    expect(page.locator('tr[data-position="5"]')).not_to_contain_text("alice@example.com")


def test_audit_export_verifies_offline(page: Page, server: ApiServer) -> None:
    open_conversation(page, server, CVC)
    with page.expect_download() as info:
        page.click("#export")
    lines = Path(info.value.path()).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 22
    result = audit.verify_lines(lines)
    assert (result.conversations, result.events) == (1, 22)


def test_verify_flags_the_first_tampered_event(
    page: Page, server: ApiServer, db_path: Path
) -> None:
    cid = "conv-sw-2"
    open_conversation(page, server, cid)
    page.click("#verify")
    expect(page.locator("#verify-result")).to_have_text("Chain intact: 12 events verify.")
    # Someone edits one stored event directly in the database (a field stored in clear: the
    # utterance itself is encrypted, see docs/privacy.md).
    with sqlite3.connect(db_path) as db:
        changed = db.execute(
            "UPDATE stored_events SET state = CAST(REPLACE(CAST(state AS TEXT), "
            '\'"handoff_id":"h"\', \'"handoff_id":"x"\') AS BLOB) '
            "WHERE originator_id = ? AND originator_version = 7 AND instr(state, ?) > 0",
            (cid, b'"handoff_id":"h"'),
        ).rowcount
    assert changed == 1
    page.reload()
    expect(page.locator('tr[data-position="7"]')).to_contain_text("handoff x completed")
    page.click("#verify")
    expect(page.locator("#verify-result")).to_contain_text("Chain broken at position 7")
    broken = page.locator("#timeline tbody tr.broken")
    expect(broken).to_have_count(1)
    expect(broken).to_have_attribute("data-position", "7")
    expect(broken.locator(".flag-broken")).to_have_text("chain broken here")
    expect(page.locator("#details-position")).to_have_text("7")
    page.screenshot(path=artifact("console/verify-tampered.png"), full_page=True)


def test_dashboard_renders_its_charts_with_the_projection_numbers(
    page: Page, server: ApiServer, db_path: Path
) -> None:
    page.goto(f"{server.base_url}/console/dashboard")
    expect(page.locator("body")).to_have_attribute("data-charts-ready", "5")
    charts = page.locator("#charts figure.chart")
    expect(charts).to_have_count(5)
    for i in range(5):  # each chart drew on its canvas, with a size
        box = charts.nth(i).locator("canvas").bounding_box()
        assert box is not None
        assert box["width"] > 200
        assert box["height"] > 100
    ledger = open_ledger(f"sqlite:///{db_path}")
    events = ledger.read_all(limit=1000)
    metrics = build_metrics(events)
    expect(page.locator('#overall tr[data-figure="offered"] td')).to_have_text(
        str(metrics.funnel.offered)
    )
    expect(page.locator('#overall tr[data-figure="completed"] td')).to_have_text(
        str(metrics.funnel.completed)
    )
    rate = metrics.reverification_rate
    assert rate is not None
    expect(page.locator('#overall tr[data-figure="reverification_rate"] td')).to_have_text(
        f"{rate * 100:.1f} %"
    )
    p95 = metrics.latency_seconds["click_to_first_audio"].p95
    assert p95 is not None
    expect(page.locator('#overall tr[data-figure="latency_p95"] td')).to_have_text(f"{p95:.2f} s")
    page.screenshot(path=artifact("console/dashboard.png"), full_page=True)


def test_the_products_own_chat_voice_chat_demo_in_the_console(
    browser: Browser, tmp_path: Path
) -> None:
    """Not seeded by hand: `threadline seed` + `threadline demo` run the real chat agent,
    handoff service and (scripted) voice leg; the console shows what they recorded."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    env = server_env(url)
    for command in (["seed"], ["demo"]):
        done = subprocess.run(
            [sys.executable, "-m", "threadline.app.cli", *command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    open_accounts(url).create("ops", PASSWORD)
    ledger = open_ledger(url)
    [cid] = {e.conversation_id for e in ledger.read_all(limit=1000)}
    events = ledger.read(cid)
    ledger.close()
    legs = [e for e in events if e.type == "LegOpened"]
    assert [e.data.model_dump()["channel"] for e in legs] == ["chat", "webrtc"]
    with ApiServer(url, tmp_path / "server.log") as server:
        context = browser.new_context(viewport={"width": 1500, "height": 1000})
        page = context.new_page()
        sign_in(page, server.base_url, "ops", at=f"/console/conversations/{cid}")
        expect(page.locator("#timeline tbody tr")).to_have_count(len(events))
        channels = page.locator("#timeline thead th.lane")
        assert [channels.nth(i).get_attribute("data-channel") for i in range(channels.count())] == [
            "conversation",
            "chat",
            "webrtc",
        ]
        steps = page.locator("#timeline tr.handoff-marker")
        assert [steps.nth(i).get_attribute("data-type") for i in range(steps.count())] == [
            "HandoffOffered",
            "HandoffAccepted",
            "HandoffCompleted",
        ]
        chat_leg, voice_leg = (e.leg_id for e in legs)
        last_voice = max(e.position for e in events if e.leg_id == voice_leg)
        after = [e for e in events if e.position > last_voice and e.type == "MessagePosted"]
        assert after  # the conversation went back to chat
        expect(page.locator(f'tr[data-position="{after[0].position}"]')).to_have_attribute(
            "data-lane", str(chat_leg)
        )
        page.click("#verify")
        expect(page.locator("#verify-result")).to_have_text(
            f"Chain intact: {len(events)} events verify."
        )
        page.screenshot(path=artifact("console/demo-chat-voice-chat.png"), full_page=True)
        context.close()
