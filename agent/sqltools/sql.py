"""Tool logic over SQL tables, shared by the SQLite and PostgreSQL backends.

Each backend supplies only a transaction that runs "?"-style statements; the queries here are
portable SQL. Bookings are race-safe without locks held across calls: the slot is taken with
a conditional UPDATE (`... WHERE booked = 0`), and the tool call id is a unique idempotency
key, so a retried call (an agent or process restarted between ToolCalled and ToolResulted)
returns the booking it already made instead of booking twice.
"""

from __future__ import annotations

import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from threadline.agent.sqltools.schema import TABLES
from threadline.agent.tools import LookupKind, Member
from threadline.handoff.errors import ToolError

MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
# Monthly price multiplier by age band (whole percent), the usual shape of a rating table.
AGE_BANDS: tuple[tuple[int, int, str], ...] = (
    (0, 80, "under 30"),
    (30, 100, "30-44"),
    (45, 135, "45-59"),
    (60, 180, "60 and over"),
)
_NON_ALNUM = re.compile(r"[^A-Z0-9]")


class Tx(Protocol):
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def key(identifier: str) -> str:
    """Identifiers compare without case or punctuation: "mbr 100234" is "MBR-100234"."""
    return _NON_ALNUM.sub("", identifier.upper())


def age_band(age: int) -> tuple[int, str]:
    factor, label = AGE_BANDS[0][1], AGE_BANDS[0][2]
    for lower, pct, name in AGE_BANDS:
        if age >= lower:
            factor, label = pct, name
    return factor, label


class SqlToolBackend(ABC):
    """`agent.tools.ToolBackend` over the tables in `agent.sqltools.schema`."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))

    # -- what a backend supplies ----------------------------------------------------------
    @abstractmethod
    def transaction(self) -> AbstractContextManager[Tx]:
        """A transaction: committed when the block ends, rolled back on an exception."""

    @abstractmethod
    def is_unique_violation(self, exc: BaseException) -> bool: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> SqlToolBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create_tables(self) -> None:
        with self.transaction() as tx:
            for statement in TABLES:
                tx.execute(statement)

    # -- ToolBackend ----------------------------------------------------------------------
    def find_member(self, identifier: str) -> Member | None:
        wanted = key(identifier)
        if not wanted:
            return None
        with self.transaction() as tx:
            rows = tx.rows(
                "SELECT m.member_id, m.policy_number, m.first_name, m.date_of_birth, p.phone"
                " FROM tool_members m LEFT JOIN tool_member_phones p"
                " ON p.member_id = m.member_id"
                " WHERE REPLACE(m.member_id, '-', '') = ?"
                " OR REPLACE(m.policy_number, '-', '') = ?",
                (wanted, wanted),
            )
        return Member(*rows[0]) if rows else None

    def lookup(
        self,
        member_id: str,
        kind: LookupKind,
        *,
        reference: str | None = None,
        month: int | None = None,
    ) -> list[dict[str, Any]]:
        with self.transaction() as tx:
            if kind == "claim":
                found = self._claims(tx, member_id)
            elif kind == "policy":
                found = self._policies(tx, member_id)
            elif kind == "appointment":
                found = self._appointments(tx, member_id)
            else:
                return self._free_slots(tx, limit=6)
        if reference:
            wanted = key(reference)
            found = [r for r in found if key(str(r["reference"])) == wanted]
        if month is not None:
            found = [r for r in found if r.get("month") == month]
        return found

    def schedule(
        self,
        member_id: str,
        *,
        slot_id: str | None,
        date: str | None,
        topic: str,
        idempotency_key: str,
    ) -> dict[str, Any]:
        try:
            with self.transaction() as tx:
                done = self._appointment_by_key(tx, idempotency_key)
                if done is not None:
                    return done
                slot = self._pick_slot(tx, slot_id, date)
                taken = tx.execute(
                    "UPDATE tool_slots SET booked = 1 WHERE slot_id = ? AND booked = 0", (slot,)
                )
                if taken != 1:
                    raise ToolError("that slot was just taken; please choose another one")
                tx.execute(
                    "INSERT INTO tool_appointments (appointment_id, member_id, slot_id, topic,"
                    " status, idempotency_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        "APT-" + uuid.uuid4().hex[:8].upper(),
                        member_id,
                        slot,
                        topic,
                        "booked",
                        idempotency_key,
                        self._clock().isoformat(),
                    ),
                )
                booked = self._appointment_by_key(tx, idempotency_key)
        except Exception as exc:
            if not self.is_unique_violation(exc):
                raise
            # The same call id raced itself (two replicas retrying): the winner's booking is
            # the answer for both.
            with self.transaction() as tx:
                booked = self._appointment_by_key(tx, idempotency_key)
            if booked is None:
                raise ToolError("that slot was just taken; please choose another one") from None
        assert booked is not None
        return booked

    def quote(
        self,
        *,
        plan: str,
        riders: list[str],
        deductible: int | None,
        age: int | None,
    ) -> dict[str, Any]:
        with self.transaction() as tx:
            plans = tx.rows(
                "SELECT plan_code, name, base_monthly_cents, default_deductible_cents"
                " FROM tool_plans ORDER BY base_monthly_cents"
            )
            wanted = key(re.sub(r"\b(?:plan|tier|cover(?:age)?)\b", "", plan, flags=re.I))
            match = next((p for p in plans if wanted in (key(p[0]), key(p[1]))), None)
            if match is None:
                names = ", ".join(p[1] for p in plans)
                raise ToolError(f"there is no plan called {plan!r}; the plans are {names}")
            code, name, base, default_deductible = match
            options = tx.rows(
                "SELECT deductible_cents, factor_pct FROM tool_deductibles WHERE plan_code = ?"
                " ORDER BY deductible_cents",
                (code,),
            )
            rider_rows = tx.rows("SELECT rider_code, name, monthly_cents FROM tool_riders")
        chosen = default_deductible if deductible is None else deductible * 100
        factor = next((f for d, f in options if d == chosen), None)
        if factor is None:
            allowed = ", ".join(money(d) for d, _ in options)
            raise ToolError(f"the {name} plan's deductible can be {allowed}")
        priced_riders = []
        for requested in riders:
            wanted_rider = key(
                re.sub(r"\b(?:riders?|add-?ons?|cover(?:age)?)\b", "", requested, flags=re.I)
            )
            row = next((r for r in rider_rows if wanted_rider in (key(r[0]), key(r[1]))), None)
            if row is None:
                names = ", ".join(r[1] for r in rider_rows)
                raise ToolError(f"there is no {requested!r} rider; riders are {names}")
            priced_riders.append({"rider": row[1], "monthly": money(row[2]), "cents": row[2]})
        age_pct, band = age_band(age) if age is not None else (100, "standard")
        plan_cents = round(base * age_pct / 100 * factor / 100)
        total = plan_cents + sum(int(r["cents"]) for r in priced_riders)
        return {
            "plan": name,
            "deductible": money(chosen),
            "age_band": band,
            "plan_monthly": money(plan_cents),
            "riders": [{"rider": r["rider"], "monthly": r["monthly"]} for r in priced_riders],
            "monthly_total": money(total),
            "monthly_total_cents": total,
            "annual_total": money(total * 12),
            "currency": "USD",
        }

    # -- helpers --------------------------------------------------------------------------
    def _claims(self, tx: Tx, member_id: str) -> list[dict[str, Any]]:
        rows = tx.rows(
            "SELECT claim_id, service_date, provider, description, amount_cents, paid_cents,"
            " status, status_detail FROM tool_claims WHERE member_id = ?"
            " ORDER BY service_date DESC, claim_id LIMIT 50",
            (member_id,),
        )
        out = []
        for claim_id, service, provider, what, amount, paid, status, detail in rows:
            day = date.fromisoformat(service)
            out.append(
                {
                    "reference": claim_id,
                    "service_date": service,
                    "month": day.month,
                    "month_name": MONTH_NAMES[day.month - 1],
                    "provider": provider,
                    "description": what,
                    "amount": money(amount),
                    "paid": money(paid),
                    "status": status,
                    "status_detail": detail,
                }
            )
        return out

    def _policies(self, tx: Tx, member_id: str) -> list[dict[str, Any]]:
        rows = tx.rows(
            "SELECT p.policy_number, pl.name, p.status, p.start_date, p.deductible_cents,"
            " p.monthly_premium_cents, p.riders FROM tool_policies p"
            " JOIN tool_plans pl ON pl.plan_code = p.plan_code WHERE p.member_id = ?"
            " ORDER BY p.start_date DESC",
            (member_id,),
        )
        return [
            {
                "reference": number,
                "plan": plan,
                "status": status,
                "start_date": start,
                "deductible": money(deductible),
                "monthly_premium": money(premium),
                "riders": [r for r in riders.split(",") if r],
            }
            for number, plan, status, start, deductible, premium, riders in rows
        ]

    def _appointments(self, tx: Tx, member_id: str) -> list[dict[str, Any]]:
        rows = tx.rows(
            "SELECT a.appointment_id, s.starts_at, s.duration_min, s.advisor, a.topic, a.status"
            " FROM tool_appointments a JOIN tool_slots s ON s.slot_id = a.slot_id"
            " WHERE a.member_id = ? ORDER BY s.starts_at",
            (member_id,),
        )
        return [_appointment(row) for row in rows]

    def _appointment_by_key(self, tx: Tx, idempotency_key: str) -> dict[str, Any] | None:
        rows = tx.rows(
            "SELECT a.appointment_id, s.starts_at, s.duration_min, s.advisor, a.topic, a.status"
            " FROM tool_appointments a JOIN tool_slots s ON s.slot_id = a.slot_id"
            " WHERE a.idempotency_key = ?",
            (idempotency_key,),
        )
        return _appointment(rows[0]) if rows else None

    def _free_slots(self, tx: Tx, limit: int) -> list[dict[str, Any]]:
        rows = tx.rows(
            "SELECT slot_id, starts_at, duration_min, advisor FROM tool_slots"
            " WHERE booked = 0 AND starts_at > ? ORDER BY starts_at LIMIT ?",
            (self._now_text(), limit),
        )
        return [
            {"reference": s, "starts_at": at, "duration_min": d, "advisor": a}
            for s, at, d, a in rows
        ]

    def _pick_slot(self, tx: Tx, slot_id: str | None, day: str | None) -> str:
        if slot_id:
            rows = tx.rows(
                "SELECT slot_id, booked, starts_at FROM tool_slots WHERE slot_id = ?",
                (slot_id.strip().upper(),),
            )
            if not rows:
                raise ToolError(f"there is no slot {slot_id}")
            if rows[0][1] or rows[0][2] <= self._now_text():
                raise ToolError("that slot is no longer available; please choose another one")
            return str(rows[0][0])
        lower = self._now_text()
        upper = "9999"
        if day:
            try:
                start = date.fromisoformat(day)
            except ValueError:
                raise ToolError(f"{day} is not a date") from None
            lower = max(lower, start.isoformat())
            upper = (start + timedelta(days=1)).isoformat()
        rows = tx.rows(
            "SELECT slot_id FROM tool_slots WHERE booked = 0 AND starts_at > ? AND starts_at < ?"
            " ORDER BY starts_at LIMIT 1",
            (lower, upper),
        )
        if not rows:
            raise ToolError(f"there are no free slots on {day}" if day else "no slots are free")
        return str(rows[0][0])

    def _now_text(self) -> str:
        return self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def _appointment(row: tuple[Any, ...]) -> dict[str, Any]:
    appointment_id, starts_at, duration, advisor, topic, status = row
    return {
        "reference": appointment_id,
        "starts_at": starts_at,
        "duration_min": duration,
        "advisor": advisor,
        "topic": topic,
        "status": status,
    }
