"""PostgreSQL LISTEN for the global log feed: the ledger's append function NOTIFYs its
channel at every commit, so other replicas' appends reach live streams at once instead of at
the next poll. The only file of `threadline.channels.live*` that imports psycopg."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

# eventsourcing names the channel after the events table (`stored_events`).
DEFAULT_CHANNEL = "stored_events"


Wake = Callable[[], None]
Stop = Callable[[], None]


def listener(url: str, channel: str = DEFAULT_CHANNEL) -> Callable[[Wake], Stop]:
    """A `threadline.channels.live_log.Listener`: LISTEN on its own connection, wake on NOTIFY."""

    def start(wake: Wake) -> Stop:
        stopping = threading.Event()

        def run() -> None:
            while not stopping.is_set():
                try:
                    with psycopg.connect(url, autocommit=True) as conn:
                        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                        wake()  # anything committed while we were not listening
                        while not stopping.is_set():
                            for _ in conn.notifies(timeout=1.0, stop_after=1):
                                wake()
                except psycopg.Error:
                    if not stopping.is_set():
                        log.warning("LISTEN %s: connection lost; reconnecting", channel)
                        stopping.wait(1.0)

        thread = threading.Thread(target=run, name="live-pg-listen", daemon=True)
        thread.start()

        def stop() -> None:
            stopping.set()
            thread.join(timeout=5)

        return stop

    return start
