"""Signed checkpoints written by the server itself (`THREADLINE_CHECKPOINT_INTERVAL_S`).

A run signs a checkpoint only when the global log advanced since the newest one, so an idle
ledger does not grow the checkpoint log. Of several replicas only the one holding the
`Lead` writes (on PostgreSQL a session advisory lock, `checkpoint_lead_postgres.py`); the
file lock in `write_checkpoint` still serialises a replica with `threadline audit
checkpoint` run from cron. A failed run is one log line, never an exception: the caller's
loop (and the server) carries on, and the next run tries again.

Runs are incremental (only what is new since the newest checkpoint is read), except the first
one a process writes after it starts or takes the lead over: that one surveys every
conversation from position 1, so a break below a quiet conversation's head is found by the
server itself at least once per start, not only by a manual `audit verify --all`.
"""

from __future__ import annotations

import logging
from typing import Protocol

from threadline.ledger.checkpoint import CheckpointPaths, read_last, write_checkpoint
from threadline.ledger.store import Ledger

log = logging.getLogger(__name__)


class Lead(Protocol):
    def lead(self) -> bool:
        """True while this process is the one that writes checkpoints."""
        ...

    def close(self) -> None: ...


class SoleWriter:
    """One node (SQLite): always the writer."""

    def lead(self) -> bool:
        return True

    def close(self) -> None:
        return None


class CheckpointSchedule:
    def __init__(self, ledger: Ledger, paths: CheckpointPaths, lead: Lead) -> None:
        self._ledger = ledger
        self._paths = paths
        self._lead = lead
        self._signed_sequence: int | None = None  # the newest checkpoint's, once read
        self._full_due = True  # the first checkpoint this process writes surveys everything
        self.written = 0

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # one line: a reason, not a traceback, on every interval
            reason = " ".join(str(exc).split()) or "no detail"
            log.warning("signed checkpoint not written: %s: %s", type(exc).__name__, reason)

    def _run(self) -> None:
        if not self._lead.lead():
            self._signed_sequence = None  # another replica writes; re-read on taking over
            self._full_due = True
            return
        current = self._ledger.recorder.max_notification_id() or 0
        if self._signed_sequence is None:
            newest = read_last(self._paths.log_file)
            self._signed_sequence = newest.global_sequence if newest is not None else 0
        if current == self._signed_sequence:
            return
        signed, report = write_checkpoint(self._ledger, self._paths, full=self._full_due)
        self._full_due = False
        self._signed_sequence = signed.global_sequence
        self.written += 1
        log.info(
            "checkpoint %d signed: %d conversation head(s), global sequence %d%s",
            signed.number,
            len(signed.heads),
            signed.global_sequence,
            f", {len(report.broken)} broken conversation(s) left out" if report.broken else "",
        )
