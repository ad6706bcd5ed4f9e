"""Housekeeping jobs the server runs on its event loop every few seconds (today: closing
stale handoffs). A job is a blocking callable run on a worker thread, so a slow database
never stalls the loop; a failing run is logged and the next one happens on schedule."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class PeriodicJob:
    def __init__(self, name: str, run: Callable[[], object], interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.name = name
        self.interval_s = interval_s
        self.runs = 0
        self.failures = 0
        self._run = run
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None

    def start(self) -> None:
        """Schedules the first run now on the running loop (the server's lifespan)."""
        if self._task is not None:
            return
        self._stopping = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Lets a run in progress finish (the store it writes to closes right after), then
        ends the loop; a run stuck longer than `timeout_s` is abandoned."""
        task, self._task = self._task, None
        if task is None or self._stopping is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(task, timeout_s)
        except TimeoutError:
            log.warning("%s: still running after %.0f s at shutdown", self.name, timeout_s)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        assert self._stopping is not None
        while not self._stopping.is_set():
            try:
                await asyncio.to_thread(self._run)
                self.runs += 1
            except Exception:  # a failed run is data for the log, never the end of the loop
                self.failures += 1
                log.exception("%s failed; retrying in %.1f s", self.name, self.interval_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval_s)
