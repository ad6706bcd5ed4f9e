"""Tables behind the tools, in SQL that SQLite and PostgreSQL both accept. Money is in whole
cents, dates and times are ISO-8601 text (UTC), so both backends sort and compare alike."""

from __future__ import annotations

TABLES: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS tool_members (
        member_id TEXT PRIMARY KEY,
        policy_number TEXT NOT NULL UNIQUE,
        first_name TEXT NOT NULL,
        last_name TEXT NOT NULL,
        date_of_birth TEXT NOT NULL
    )""",
    # A table of its own (not a column) so databases seeded before it existed need no ALTER.
    """CREATE TABLE IF NOT EXISTS tool_member_phones (
        member_id TEXT PRIMARY KEY REFERENCES tool_members (member_id),
        phone TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS tool_plans (
        plan_code TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        base_monthly_cents INTEGER NOT NULL CHECK (base_monthly_cents > 0),
        default_deductible_cents INTEGER NOT NULL CHECK (default_deductible_cents >= 0)
    )""",
    """CREATE TABLE IF NOT EXISTS tool_deductibles (
        plan_code TEXT NOT NULL REFERENCES tool_plans (plan_code),
        deductible_cents INTEGER NOT NULL CHECK (deductible_cents >= 0),
        factor_pct INTEGER NOT NULL CHECK (factor_pct > 0),
        PRIMARY KEY (plan_code, deductible_cents)
    )""",
    """CREATE TABLE IF NOT EXISTS tool_riders (
        rider_code TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        monthly_cents INTEGER NOT NULL CHECK (monthly_cents >= 0)
    )""",
    """CREATE TABLE IF NOT EXISTS tool_policies (
        policy_number TEXT PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES tool_members (member_id),
        plan_code TEXT NOT NULL REFERENCES tool_plans (plan_code),
        status TEXT NOT NULL,
        start_date TEXT NOT NULL,
        deductible_cents INTEGER NOT NULL,
        monthly_premium_cents INTEGER NOT NULL,
        riders TEXT NOT NULL DEFAULT ''
    )""",
    """CREATE TABLE IF NOT EXISTS tool_claims (
        claim_id TEXT PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES tool_members (member_id),
        policy_number TEXT NOT NULL REFERENCES tool_policies (policy_number),
        service_date TEXT NOT NULL,
        provider TEXT NOT NULL,
        description TEXT NOT NULL,
        amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
        paid_cents INTEGER NOT NULL DEFAULT 0 CHECK (paid_cents >= 0),
        status TEXT NOT NULL,
        status_detail TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX IF NOT EXISTS tool_claims_member ON tool_claims (member_id, service_date)",
    """CREATE TABLE IF NOT EXISTS tool_slots (
        slot_id TEXT PRIMARY KEY,
        starts_at TEXT NOT NULL,
        duration_min INTEGER NOT NULL CHECK (duration_min > 0),
        advisor TEXT NOT NULL,
        booked INTEGER NOT NULL DEFAULT 0 CHECK (booked IN (0, 1))
    )""",
    "CREATE INDEX IF NOT EXISTS tool_slots_free ON tool_slots (booked, starts_at)",
    """CREATE TABLE IF NOT EXISTS tool_appointments (
        appointment_id TEXT PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES tool_members (member_id),
        slot_id TEXT NOT NULL UNIQUE REFERENCES tool_slots (slot_id),
        topic TEXT NOT NULL,
        status TEXT NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    )""",
)
