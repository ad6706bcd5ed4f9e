"""The blocking ledger call of an HTTP append, off the event loop, cheaply.

`starlette.concurrency.run_in_threadpool` goes through anyio's `to_thread.run_sync`
(capacity limiter, cancel scopes, run-vars): on the append route that hand-off was ~40 % of
the event loop's CPU per request once FastAPI's own machinery was bypassed
(docs/performance.md). A plain executor hand-off does the same job; the pool is as wide as
anyio's default limiter (40), so as many appends as before can wait on one group commit.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_POOL = ThreadPoolExecutor(max_workers=40, thread_name_prefix="http-append")


async def in_append_thread(fn: Callable[[], T]) -> T:
    """`fn()` in a worker thread, with this task's context variables (as anyio does)."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(
        _POOL, functools.partial(context.run, fn)
    )
