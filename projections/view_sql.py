"""The metrics read model in SQL, shared by the SQLite and PostgreSQL backends.

Tables (names prefixed `projection_`): `metrics_conversations(conversation_id, facts)`,
`metrics_handoffs(conversation_id, handoff_id, facts, offer_to_accept, accept_to_complete,
offer_to_complete)`, `metrics_totals(name, data)` and `gaps(name, sequence, first_seen)`;
the position lives in eventsourcing's tracking table. Facts and totals are JSON text, so
the two dialects share every statement but the DDL.

One commit is one transaction: lock (one writer per view at a time), re-read the tracking
state and check the batch against it, load the facts of the conversations in the batch, fold,
write the changed facts, the totals, the gap changes and the new position.
"""

# Table names are fixed identifiers chosen in code, never input; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from eventsourcing.persistence import Tracking

from threadline.projections.metrics import (
    TRANSITIONS,
    VOICE_TIMINGS,
    ConversationFacts,
    HandoffFacts,
    MetricsState,
    Totals,
    apply_event,
    state_latencies,
)
from threadline.projections.views import Batch, MetricsView, TrackingState, check_batch

CHUNK = 500  # ids per IN (...) list: well under SQLite's and psycopg's parameter limits


class SqlMetricsView(MetricsView):
    """Template for SQL backends; subclasses give DDL, a transaction and the tracking SQL."""

    placeholder = "?"

    def __init__(self, prefix: str = "projection_") -> None:
        self.t_conversations = f"{prefix}metrics_conversations"
        self.t_handoffs = f"{prefix}metrics_handoffs"
        self.t_totals = f"{prefix}metrics_totals"
        self.t_gaps = f"{prefix}gaps"

    def create_statements(self, text: str, real: str, integer: str, suffix: str = "") -> list[str]:
        """The read model's four tables, in the backend's column types (`suffix` ends each
        CREATE TABLE, e.g. SQLite's WITHOUT ROWID): one schema for every backend."""
        end = f"){suffix}"
        return [
            f"CREATE TABLE IF NOT EXISTS {self.t_conversations} ("
            f"conversation_id {text} PRIMARY KEY, facts {text} NOT NULL{end}",
            f"CREATE TABLE IF NOT EXISTS {self.t_handoffs} ("
            f"conversation_id {text} NOT NULL, handoff_id {text} NOT NULL, "
            f"facts {text} NOT NULL, offer_to_accept {real}, accept_to_complete {real}, "
            f"offer_to_complete {real}, PRIMARY KEY (conversation_id, handoff_id){end}",
            f"CREATE TABLE IF NOT EXISTS {self.t_totals} ("
            f"name {text} PRIMARY KEY, data {text} NOT NULL{end}",
            f"CREATE TABLE IF NOT EXISTS {self.t_gaps} ("
            f"name {text} NOT NULL, sequence {integer} NOT NULL, "
            f"first_seen {real} NOT NULL, PRIMARY KEY (name, sequence){end}",
        ]

    # --- what a backend provides -----------------------------------------------------------

    @abstractmethod
    def _transaction(self, *, commit: bool) -> AbstractContextManager[Any]:
        """A cursor inside one transaction (rolled back on error or when commit=False)."""

    @abstractmethod
    def _lock(self, c: Any) -> None:
        """Makes this transaction the view's only writer until it ends."""

    @abstractmethod
    def _position(self, c: Any) -> int: ...

    @abstractmethod
    def _insert_tracking(self, c: Any, tracking: Tracking) -> None: ...

    @abstractmethod
    def _delete_tracking(self, c: Any) -> None: ...

    # --- shared SQL ------------------------------------------------------------------------

    def q(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _gaps(self, c: Any) -> dict[int, float]:
        c.execute(
            self.q(f"SELECT sequence, first_seen FROM {self.t_gaps} WHERE name = ?"), (self.name,)
        )
        return {int(r["sequence"]): float(r["first_seen"]) for r in c.fetchall()}

    def tracking(self) -> TrackingState:
        with self._transaction(commit=False) as c:
            return TrackingState(self._position(c), self._gaps(c))

    def commit(self, batch: Batch) -> None:
        with self._transaction(commit=True) as c:
            self._lock(c)
            check_batch(TrackingState(self._position(c), self._gaps(c)), batch)
            state = MetricsState(totals=self._totals(c))
            ids = sorted({e.conversation_id for e in batch.events})
            self._load(c, ids, state)
            changed: set[str] = set()
            changed_handoffs: set[tuple[str, str]] = set()
            for event in batch.events:
                apply_event(state, event, changed, changed_handoffs)
            self._write(c, state, changed, changed_handoffs)
            self._write_gaps(c, batch)
            if batch.position is not None:
                self._insert_tracking(c, Tracking(self.tracking_name, batch.position))

    def _load(self, c: Any, ids: Sequence[str], state: MetricsState) -> None:
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            c.execute(
                self.q(
                    f"SELECT conversation_id, facts FROM {self.t_conversations} "
                    f"WHERE conversation_id IN ({marks})"
                ),
                chunk,
            )
            for r in c.fetchall():
                state.conversations[r["conversation_id"]] = ConversationFacts.from_json(
                    json.loads(r["facts"])
                )
            c.execute(
                self.q(
                    f"SELECT conversation_id, handoff_id, facts FROM {self.t_handoffs} "
                    f"WHERE conversation_id IN ({marks})"
                ),
                chunk,
            )
            for r in c.fetchall():
                key = (r["conversation_id"], r["handoff_id"])
                state.handoffs[key] = HandoffFacts.from_json(json.loads(r["facts"]))

    def _write(
        self,
        c: Any,
        state: MetricsState,
        changed: set[str],
        changed_handoffs: set[tuple[str, str]],
    ) -> None:
        if changed:
            c.executemany(
                self.q(
                    f"INSERT INTO {self.t_conversations} (conversation_id, facts) VALUES (?, ?) "
                    "ON CONFLICT (conversation_id) DO UPDATE SET facts = excluded.facts"
                ),
                [(cid, _dumps(state.conversations[cid].to_json())) for cid in sorted(changed)],
            )
        if changed_handoffs:
            rows = []
            for key in sorted(changed_handoffs):
                h = state.handoffs[key]
                rows.append((*key, _dumps(h.to_json()), *(h.latency(t) for t in TRANSITIONS)))
            c.executemany(
                self.q(
                    f"INSERT INTO {self.t_handoffs} (conversation_id, handoff_id, facts, "
                    "offer_to_accept, accept_to_complete, offer_to_complete) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (conversation_id, handoff_id) DO "
                    "UPDATE SET facts = excluded.facts, offer_to_accept = excluded.offer_to_accept,"
                    " accept_to_complete = excluded.accept_to_complete,"
                    " offer_to_complete = excluded.offer_to_complete"
                ),
                rows,
            )
        c.execute(
            self.q(f"UPDATE {self.t_totals} SET data = ? WHERE name = ?"),
            (_dumps(state.totals.to_json()), self.name),
        )

    def _write_gaps(self, c: Any, batch: Batch) -> None:
        gone = [(self.name, s) for s in (*batch.filled, *batch.dropped)]
        if gone:
            c.executemany(
                self.q(f"DELETE FROM {self.t_gaps} WHERE name = ? AND sequence = ?"), gone
            )
        if batch.new_gaps:
            c.executemany(
                self.q(f"INSERT INTO {self.t_gaps} (name, sequence, first_seen) VALUES (?, ?, ?)"),
                [(self.name, s, t) for s, t in sorted(batch.new_gaps.items())],
            )

    def _ensure_totals_row(self, c: Any) -> None:
        c.execute(
            self.q(
                f"INSERT INTO {self.t_totals} (name, data) VALUES (?, ?) "
                "ON CONFLICT (name) DO NOTHING"
            ),
            (self.name, _dumps(Totals().to_json())),
        )

    def _totals(self, c: Any) -> Totals:
        c.execute(self.q(f"SELECT data FROM {self.t_totals} WHERE name = ?"), (self.name,))
        row = c.fetchone()
        return Totals.from_json(json.loads(row["data"])) if row is not None else Totals()

    def totals(self) -> Totals:
        with self._transaction(commit=False) as c:
            return self._totals(c)

    def latencies(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        with self._transaction(commit=False) as c:
            for name in TRANSITIONS:  # names are constants, not input
                c.execute(
                    f"SELECT {name} AS v FROM {self.t_handoffs} "
                    f"WHERE {name} IS NOT NULL ORDER BY {name}"
                )
                out[name] = [float(r["v"]) for r in c.fetchall()]
            # Voice timings live in the facts of completed handoffs (no columns: the schema of
            # existing read models stays as it is).
            c.execute(f"SELECT facts FROM {self.t_handoffs} WHERE accept_to_complete IS NOT NULL")
            facts = [HandoffFacts.from_json(json.loads(r["facts"])) for r in c.fetchall()]
        voice = state_latencies(facts)
        out.update({name: sorted(voice[name]) for name in VOICE_TIMINGS})
        return out

    def reset(self) -> None:
        with self._transaction(commit=True) as c:
            self._lock(c)
            c.execute(f"DELETE FROM {self.t_conversations}")
            c.execute(f"DELETE FROM {self.t_handoffs}")
            c.execute(self.q(f"DELETE FROM {self.t_gaps} WHERE name = ?"), (self.name,))
            c.execute(
                self.q(f"UPDATE {self.t_totals} SET data = ? WHERE name = ?"),
                (_dumps(Totals().to_json()), self.name),
            )
            self._delete_tracking(c)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    for i in range(0, len(ids), CHUNK):
        yield list(ids[i : i + CHUNK])
