"""Change feeds for live streams: the global log feed reports appends made through another
Ledger object (another process, in production), and PostgreSQL LISTEN wakes it at once."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

from threadline.channels.live_log import GlobalLogFeed
from threadline.ledger.envelope import NewEvent
from threadline.ledger.events import ConversationStarted
from threadline.ledger.store import open_ledger


def started() -> NewEvent:
    return NewEvent("ConversationStarted", ConversationStarted(channel="chat"))


def test_global_log_feed_reports_appends_of_other_writers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'feed.db'}"
    reader, writer = open_ledger(url), open_ledger(url)
    seen: list[str] = []
    got = threading.Event()

    def on_change(cid: str) -> None:
        seen.append(cid)
        got.set()

    writer.append("before", started())  # already there when the feed starts: not reported
    stop = GlobalLogFeed(reader, poll_interval_s=0.05).start(on_change)
    try:
        cid = uuid.uuid4().hex
        writer.append(cid, started())
        assert got.wait(5)
        assert seen == [cid]
    finally:
        stop()
        reader.close()
        writer.close()


@pytest.mark.postgres
def test_postgres_listen_wakes_the_feed_at_once(fresh_postgres_url: str) -> None:
    from threadline.channels.live_postgres import listener

    reader, writer = open_ledger(fresh_postgres_url), open_ledger(fresh_postgres_url)
    got = threading.Event()
    # A poll interval far longer than the wait below: only a NOTIFY can deliver in time.
    feed = GlobalLogFeed(reader, poll_interval_s=60, listener=listener(fresh_postgres_url))
    stop = feed.start(lambda _cid: got.set())
    try:
        got.wait(2)  # the listener's first wake-up after connecting
        got.clear()
        writer.append(uuid.uuid4().hex, started())
        assert got.wait(5)
    finally:
        stop()
        reader.close()
        writer.close()
