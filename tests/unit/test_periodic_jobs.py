"""threadline.channels.periodic: housekeeping runs on schedule, survives failures, stops cleanly."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from threadline.channels.periodic import PeriodicJob


def test_runs_repeatedly_and_survives_failures(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) % 2:
            raise RuntimeError("database went away")

    async def scenario() -> PeriodicJob:
        job = PeriodicJob("flaky", flaky, 0.01)
        job.start()
        for _ in range(500):
            if job.runs >= 2 and job.failures >= 2:
                break
            await asyncio.sleep(0.01)
        await job.stop()
        return job

    with caplog.at_level(logging.ERROR, logger="threadline.channels.periodic"):
        job = asyncio.run(scenario())
    assert job.runs >= 2
    assert job.failures >= 2
    assert len(calls) == job.runs + job.failures
    assert any("flaky failed" in r.getMessage() for r in caplog.records)


def test_stop_waits_for_the_run_in_progress_and_nothing_runs_after() -> None:
    started, release = threading.Event(), threading.Event()
    finished: list[float] = []

    def slow() -> None:
        started.set()
        release.wait(5)
        finished.append(time.monotonic())

    async def scenario() -> float:
        job = PeriodicJob("slow", slow, 0.01)
        job.start()
        await asyncio.to_thread(started.wait, 5)
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, release.set)
        await job.stop()
        stopped = time.monotonic()
        await asyncio.sleep(0.05)
        assert len(finished) == 1  # the in-flight run completed; no new one started
        return stopped

    stopped = asyncio.run(scenario())
    assert finished[0] <= stopped


def test_a_run_stuck_past_the_timeout_is_abandoned(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()

    async def scenario() -> None:
        job = PeriodicJob("stuck", lambda: release.wait(5), 0.01)
        job.start()
        await asyncio.sleep(0.05)
        await job.stop(timeout_s=0.05)
        release.set()  # lets asyncio.run's executor shutdown finish

    with caplog.at_level(logging.WARNING, logger="threadline.channels.periodic"):
        asyncio.run(scenario())
    assert any("still running" in r.getMessage() for r in caplog.records)


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        PeriodicJob("never", lambda: None, 0)
