"""What PostgreSQL's writer backends are doing during a benchmark run, from PostgreSQL itself.

`WaitSampler(url)` polls `pg_stat_activity` every few milliseconds from its own connection
and counts, for each client backend of the benchmark's database, one of:
- `client` — idle: the server waits for the client's next request (Python CPU, the GIL,
  the round trip);
- `client-in-tx` — idle in transaction: the insert is done and the server waits for the
  client's COMMIT, the locks still held (eventsourcing's `transaction(commit=True)` sends
  COMMIT as a second round trip);
- `cpu` — active with no wait event: the backend is running (or waiting for a core);
- `Lock:<event>` — a heavyweight lock wait: `relation` is `LOCK TABLE` (1 partition),
  `transactionid`/`tuple` a row lock on a partition's head row (N partitions);
- `LWLock:<event>` / `IO:<event>` — `WALWrite` (waiting for another backend's WAL flush),
  `WALSync`/`WALWrite` IO (this backend's own fsync at commit), and so on.

It also reads /proc/stat over the same interval, so that the share of the machine's cores
busy (all processes: client, server, other work) is printed next to the wait profile.
Connections idle for over half a second (spare pool connections) are left out. The
sampler's own queries cost a little CPU; it is on only when asked (`--waits`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import psycopg

SAMPLE = (
    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
    "WHERE datname = current_database() AND backend_type = 'client backend' "
    "AND pid <> pg_backend_pid() "
    # pool connections no writer is using (a writer is never idle for half a second)
    "AND NOT (state = 'idle' AND state_change < clock_timestamp() - interval '500 ms')"
)


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all cores since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def classify(state: str | None, wait_type: str | None, wait_event: str | None) -> str:
    if state == "idle in transaction":
        return "client-in-tx"
    if state != "active":
        return "client"
    if wait_type is None:
        return "cpu"
    return f"{wait_type}:{wait_event}"


class WaitSampler:
    def __init__(self, url: str, interval_s: float = 0.005) -> None:
        self._url = url
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.counts: Counter[str] = Counter()
        self.samples = 0
        self._cpu_start = (0, 0)
        self.busy_share = 0.0

    def __enter__(self) -> WaitSampler:
        self._cpu_start = _cpu_ticks()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        busy, total = _cpu_ticks()
        span = total - self._cpu_start[1]
        self.busy_share = (busy - self._cpu_start[0]) / span if span else 0.0

    def _run(self) -> None:
        with psycopg.connect(self._url, autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute(SAMPLE).fetchall()
                if rows:
                    self.samples += 1
                    self.counts.update(classify(*row) for row in rows)
                time.sleep(self._interval)

    def shares(self) -> dict[str, float]:
        """Backend-samples per class, as a share of all backend-samples."""
        total = sum(self.counts.values())
        return {k: v / total for k, v in self.counts.most_common()} if total else {}

    def summary(self, top: int = 6) -> str:
        parts = [f"{k} {v:.0%}" for k, v in list(self.shares().items())[:top]]
        return f"cores busy {self.busy_share:.0%}; backends: " + ", ".join(parts)
