"""A change feed from the global log, for appends made by *other processes* (another API
replica, `threadline append`, a messaging worker) that this process's `Ledger.subscribe`
never sees.

A daemon thread follows `read_all` from the log's head and reports each new event's
conversation. It polls (`poll_interval_s`, only a `max_sequence()` query when nothing is new)
and can be woken early by a database notification (`wake`, e.g. PostgreSQL LISTEN — see
`threadline.channels.live_postgres`). Streams treat reports as wake-ups and re-read the ledger, so a
report that comes twice (also seen in-process) or late costs nothing but a read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from threadline.channels.live import OnChange, Unsubscribe
from threadline.ledger.store import Ledger

log = logging.getLogger(__name__)

# Starts a database listener that calls `wake()` on each notification; returns its stop.
Listener = Callable[[Callable[[], None]], Unsubscribe]


class GlobalLogFeed:
    def __init__(
        self,
        ledger: Ledger,
        *,
        poll_interval_s: float = 1.0,
        listener: Listener | None = None,
        batch: int = 500,
    ) -> None:
        self._ledger = ledger
        self._poll_interval_s = poll_interval_s
        self._listener = listener
        self._batch = batch
        self._wake = threading.Event()
        self._stop = threading.Event()

    def start(self, on_change: OnChange) -> Unsubscribe:
        cursor = self._ledger.max_sequence()
        stop_listener = self._listener(self._wake.set) if self._listener else None

        def follow() -> None:
            nonlocal cursor
            while not self._stop.is_set():
                try:
                    if self._ledger.max_sequence() > cursor:
                        for sequence, cid in self._ledger.read_all_ids(cursor, self._batch):
                            on_change(cid)
                            cursor = max(cursor, sequence)
                        continue
                except Exception:  # a database hiccup must not end live streams for good
                    log.exception("global log feed: read failed; retrying")
                self._wake.wait(self._poll_interval_s)
                self._wake.clear()

        thread = threading.Thread(target=follow, name="live-global-log", daemon=True)
        thread.start()

        def stop() -> None:
            self._stop.set()
            self._wake.set()
            if stop_listener is not None:
                stop_listener()
            thread.join(timeout=5)

        return stop
