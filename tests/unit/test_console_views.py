"""The console's pure view code: masking, the conversation catalog, the timeline, charts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support import console_seed
from threadline.channels.console import masking
from threadline.channels.console.catalog import Catalog, Query
from threadline.channels.console.dashboard import Dashboard, charts, flatten, overall_rows
from threadline.channels.console.timeline import build_timeline
from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.errors import IntegrityViolationError
from threadline.ledger.store import Ledger, open_ledger


@pytest.fixture
def ledger() -> Ledger:
    return open_ledger("memory://")


# -- masking ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("mail me at alice.smith@example.com today", "alice.smith@example.com"),
        ("call +1 (555) 010-0199 now", "555"),
        ("my card is 4111111111111111", "4111111111111111"),
        ("number 0612345678", "0612345678"),
    ],
)
def test_mask_text_hides_contact_details(text: str, hidden: str) -> None:
    assert hidden not in masking.mask_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "Claim CLM-4821 from January, 3 items",
        "booked for 2026-11-30 at 09:00",
        "starts_at 2026-11-30T09:00:00+00:00",
        "paid on 30/11/2026",
    ],
)
def test_mask_text_keeps_ordinary_words_dates_and_short_numbers(text: str) -> None:
    assert masking.mask_text(text) == text


def test_mask_text_masks_numbers_next_to_dates() -> None:
    masked = masking.mask_text(
        "on 2026-11-30 member 12345678 card 4111111111111111 +44 20 7946 0958"
    )
    assert masked.startswith("on 2026-11-30 member [")
    for secret in ("12345678", "4111111111111111", "7946", "0958"):
        assert secret not in masked


def test_mask_data_masks_pii_keys_whole_and_tool_names_not() -> None:
    masked = masking.mask_data(
        {"subject": "alice@example.com", "name": "lookup_claim", "arguments": {"phone": "0612"}}
    )
    assert masked["subject"].startswith("a")
    assert "alice" not in masked["subject"]
    assert masked["name"] == "lookup_claim"
    assert masked["arguments"]["phone"] != "0612"


@given(
    st.recursive(
        st.text(max_size=30) | st.integers() | st.none(),
        lambda c: (
            st.lists(c, max_size=3)
            | st.dictionaries(st.sampled_from(["subject", "text", "x"]), c, max_size=3)
        ),
    )
)
def test_masking_never_fails_and_keeps_shape(value: Any) -> None:
    masked = masking.mask_value(value)
    assert type(masked) is type(value)
    if isinstance(value, dict):
        assert masked.keys() == value.keys()


# -- catalog ---------------------------------------------------------------------------------


def test_catalog_summarises_and_filters(ledger: Ledger) -> None:
    console_seed.population(ledger)
    catalog = Catalog(ledger, batch=7)  # small batches: catch-up crosses batch edges
    everything = catalog.search(Query())
    assert everything.total == 10
    assert everything.per_status == {"open": 2, "resolved": 8}
    assert everything.per_channel["sms"] == 1
    assert everything.per_channel["webrtc"] == 4
    cvc = catalog.get("conv-chat-voice-chat")
    assert cvc is not None
    assert cvc["channels"] == ["chat", "webrtc"]
    assert cvc["subjects"] == ["alice@example.com"]
    assert cvc["status"] == "resolved"
    assert cvc["version"] == 22

    def ids(**kw: Any) -> set[str]:
        return {item["conversation_id"] for item in catalog.search(Query(**kw)).items}

    assert ids(channel="sms") == {"conv-sms-1"}
    assert ids(conversation_id="VOICE") == {"conv-chat-voice-chat"}
    assert ids(subject="ALICE@") == {"conv-chat-voice-chat"}
    assert ids(outcome="abandoned") == {"conv-sms-1"}
    assert ids(status="open") == {"conv-chat-2", "conv-sw-3"}
    assert ids(date_from=date(2025, 3, 5)) == {"conv-sw-4", "conv-sw-5", "conv-chat-3"}
    assert ids(date_to=date(2025, 3, 3)) == {
        "conv-chat-voice-chat",
        "conv-chat-1",
        "conv-sw-1",
    }
    assert catalog.search(Query(limit=3, offset=9)).items[0]["conversation_id"] == (
        "conv-chat-voice-chat"  # oldest activity last
    )


def test_catalog_catches_up_with_new_events(ledger: Ledger) -> None:
    catalog = Catalog(ledger)
    assert catalog.search(Query()).total == 0
    console_seed.chat_only(ledger, "c1", resolved=False)
    assert catalog.search(Query(status="open")).total == 1
    console_seed.Script(ledger, "c1", console_seed.T0)("ConversationResolved", {"outcome": "x"})
    assert catalog.search(Query(status="open")).total == 0
    assert catalog.search(Query(outcome="x")).total == 1


# -- timeline --------------------------------------------------------------------------------


def test_timeline_lanes_markers_and_flags(ledger: Ledger) -> None:
    cid = console_seed.chat_voice_chat(ledger)
    events = ledger.read(cid)
    t = build_timeline(cid, events, mask=False)
    assert [(lane["id"], lane["channel"]) for lane in t["lanes"]] == [
        ("conversation", "conversation"),
        ("chat-1", "chat"),
        ("voice-1", "webrtc"),
    ]
    assert [m["step"] for m in t["handoff_markers"]] == ["offered", "accepted", "completed"]
    rows = {r["position"]: r for r in t["events"]}
    assert [r["position"] for r in t["events"]] == list(range(1, 23))
    assert rows[17]["flags"] == ["interrupted"]
    assert "It is pending because" in rows[17]["summary"]
    assert rows[7]["call_position"] == 6
    assert rows[14]["lane"] == "voice-1"
    assert rows[20]["lane"] == "chat-1"  # back to chat after the call
    assert rows[8]["envelope"]["hash"] == events[7].hash
    assert rows[2]["offset_ms"] == 3000


def test_timeline_masks_pii_but_keeps_hashes(ledger: Ledger) -> None:
    cid = console_seed.chat_voice_chat(ledger)
    events = ledger.read(cid)
    t = build_timeline(cid, events, mask=True)
    text = str(t)
    assert "alice@example.com" not in text
    assert "pc-9f3" not in text
    assert [r["envelope"]["hash"] for r in t["events"]] == [e.hash for e in events]


def test_timeline_shows_unreadable_records_in_place(ledger: Ledger) -> None:
    cid = console_seed.chat_only(ledger, "c1")
    events = [e for e in ledger.read(cid) if e.position != 3]
    t = build_timeline(cid, events, mask=False, unreadable=[(3, "bad bytes")])
    assert [r["position"] for r in t["events"]] == [1, 2, 3, 4, 5, 6]
    assert t["events"][2]["kind"] == "unreadable"


def test_reading_continues_past_an_unreadable_record(ledger: Ledger) -> None:
    from threadline.channels.console.reading import read_conversation

    console_seed.chat_only(ledger, "c1")

    class Damaged:
        def read(
            self,
            conversation_id: str,
            after: int = 0,
            upto: int | None = None,
            limit: int | None = None,
        ) -> list[RecordedEvent]:
            got = ledger.read(conversation_id, after=after, upto=upto, limit=limit)
            if any(e.position == 4 for e in got):
                raise IntegrityViolationError(conversation_id, 4, "unreadable record")
            return got

        def read_all(self, after: int = 0, limit: int = 500) -> list[RecordedEvent]:
            raise NotImplementedError

        def version(self, conversation_id: str) -> int:
            return ledger.version(conversation_id)

    out = read_conversation(Damaged(), "c1")
    assert [e.position for e in out.events] == [1, 2, 3, 5, 6]
    assert out.unreadable == [(4, "unreadable record")]


# -- dashboard -------------------------------------------------------------------------------


class CountingFold:
    def __init__(self, owner: CountingMetrics) -> None:
        self.owner = owner
        self.offered = 0
        self.conversations: set[str] = set()

    def add(self, events: Sequence[RecordedEvent]) -> None:
        self.owner.events_seen += len(events)
        self.offered += sum(e.type == "HandoffOffered" for e in events)
        self.conversations |= {e.conversation_id for e in events}

    def summary(self) -> dict[str, Any]:
        self.owner.summaries += 1
        return {"funnel": {"offered": self.offered}, "conversations": len(self.conversations)}


class CountingMetrics:
    """A stand-in projection for the dashboard's own plumbing (the real one is checked
    against `build_metrics` in the integration and browser tests)."""

    def __init__(self) -> None:
        self.summaries = 0
        self.events_seen = 0

    def accumulator(self) -> CountingFold:
        return CountingFold(self)


def test_dashboard_runs_the_projection_overall_and_per_start_day(ledger: Ledger) -> None:
    console_seed.population(ledger)
    metrics = CountingMetrics()
    dash = Dashboard(ledger, metrics)
    figures = dash.figures()
    assert figures["overall"] == {"funnel": {"offered": 6}, "conversations": 10}
    assert [(s["day"], s["metrics"]["conversations"]) for s in figures["series"]] == [
        ("2025-03-03", 3),
        ("2025-03-04", 4),
        ("2025-03-05", 3),
    ]
    summaries, seen = metrics.summaries, metrics.events_seen
    assert seen == 2 * 90  # every event once overall, once in its day
    dash.figures()
    assert metrics.summaries == summaries  # cached until the log grows
    console_seed.chat_only(ledger, "late", day=2)
    assert dash.figures()["overall"]["conversations"] == 11
    assert metrics.events_seen == seen + 2 * 6  # only the new events are folded
    rows = {r["id"]: r["value"] for r in overall_rows(figures["overall"])}
    assert rows["offered"] == 6
    assert rows["accepted"] is None
    funnel = charts(figures)[0]
    assert funnel["x"] == ["Offered", "Accepted", "Completed"]
    lines = dash.csv().splitlines()
    assert lines[0] == "period,conversations,funnel.offered"
    assert lines[1] == "all,11,6"
    assert len(lines) == 1 + 1 + 3


def test_flatten() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": [1]}}, "e": None}) == {
        "a.b": 1,
        "a.c.d": [1],
        "e": None,
    }


def test_timeline_has_a_lane_per_leg_on_every_channel(ledger: Ledger) -> None:
    s = console_seed.Script(ledger, "all-channels", console_seed.T0)
    s("ConversationStarted", {"channel": "chat"}, after_s=0)
    for channel in ("chat", "webrtc", "sms", "whatsapp", "pstn"):
        s("LegOpened", {"channel": channel}, f"leg-{channel}")
        s("MessagePosted", {"role": "visitor", "text": f"on {channel}"}, f"leg-{channel}")
    s("MessagePosted", {"role": "agent", "text": "back on chat"}, "leg-chat")
    t = build_timeline("all-channels", ledger.read("all-channels"), mask=False)
    assert [lane["channel"] for lane in t["lanes"]] == [
        "conversation",
        "chat",
        "webrtc",
        "sms",
        "whatsapp",
        "pstn",
    ]
    assert [r["lane"] for r in t["events"] if r["type"] == "MessagePosted"] == [
        "leg-chat",
        "leg-webrtc",
        "leg-sms",
        "leg-whatsapp",
        "leg-pstn",
        "leg-chat",
    ]
