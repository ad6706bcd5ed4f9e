"""Demo data for the tools: a few members with policies and claims (among them the demo
member's January claim), the plan price list, and appointment slots for the coming days.

Idempotent (`INSERT ... ON CONFLICT DO NOTHING`): seeding twice changes nothing, and seeding
on a later day only adds that day's new slots. Dates are relative to `today`, so the demo's
"January claim" is always the most recent January that has passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from threadline.agent.sqltools.sql import SqlToolBackend


@dataclass(frozen=True, slots=True)
class DemoMember:
    member_id: str
    policy_number: str
    first_name: str
    last_name: str
    date_of_birth: str
    phone: str | None = None  # on file, E.164; numbers in the 555-01xx range are fictional


DEMO_MEMBER = DemoMember(
    "MBR-100234", "POL-558812", "Dana", "Whitfield", "1984-03-12", "+12025550142"
)
OTHER_MEMBERS = (
    DemoMember("MBR-100871", "POL-771203", "Sam", "Okafor", "1990-11-02", "+12025550187"),
    # No phone on file: verifying her records the member subject only.
    DemoMember("MBR-100455", "POL-340019", "Maria", "Lindqvist", "1958-07-28"),
)

PLANS = (  # code, name, base monthly cents (age 30-44), default deductible cents
    ("BRONZE", "Bronze", 21000, 250000),
    ("SILVER", "Silver", 31200, 100000),
    ("GOLD", "Gold", 45500, 50000),
    ("PLATINUM", "Platinum", 59000, 25000),
)
# Lower deductible, higher premium (factor in whole percent of the plan's base).
DEDUCTIBLE_FACTORS = ((25000, 128), (50000, 112), (100000, 100), (250000, 88))
RIDERS = (
    ("DENTAL", "Dental", 2800),
    ("VISION", "Vision", 1200),
    ("ACCIDENT", "Accident", 1900),
    ("CRITICAL", "Critical illness", 3400),
    ("TRAVEL", "Travel", 900),
)
SLOT_TIMES = ("09:00", "10:30", "13:00", "15:30")
ADVISORS = ("Priya", "Marcus", "Elena")


@dataclass(frozen=True, slots=True)
class SeedSummary:
    members: int
    claims: int
    slots: int
    january_claim: str


def last_january(today: date) -> int:
    """The year of the most recent January 14th that is not in the future."""
    return today.year if today >= date(today.year, 1, 14) else today.year - 1


def seed(backend: SqlToolBackend, today: date | None = None, slot_days: int = 10) -> SeedSummary:
    today = today or datetime.now(UTC).date()
    year = last_january(today)
    members = (DEMO_MEMBER, *OTHER_MEMBERS)
    policies = (  # policy, member, plan, status, start, deductible, premium, riders
        (DEMO_MEMBER.policy_number, DEMO_MEMBER.member_id, "SILVER", "active",
         f"{year - 3}-02-01", 100000, 31200, "Dental"),
        (OTHER_MEMBERS[0].policy_number, OTHER_MEMBERS[0].member_id, "BRONZE", "active",
         f"{year - 1}-06-01", 250000, 16800, ""),
        (OTHER_MEMBERS[1].policy_number, OTHER_MEMBERS[1].member_id, "GOLD", "active",
         f"{year - 8}-09-01", 50000, 61400, "Vision,Critical illness"),
    )  # fmt: skip
    claims = (  # id, member, policy, service date, provider, description, cents, paid, status
        ("CLM-4821", DEMO_MEMBER, f"{year}-01-14", "Riverside General Hospital",
         "Emergency room visit", 234000, 0, "pending_review",
         "waiting for the itemised bill from the hospital"),
        ("CLM-4907", DEMO_MEMBER, f"{year}-02-03", "Northside Physio",
         "Physiotherapy session", 18000, 14400, "paid", "paid at 80% after deductible"),
        ("CLM-3310", DEMO_MEMBER, f"{year - 1}-10-21", "Dr. Amal Haddad",
         "Annual check-up", 22000, 22000, "paid", "preventive care, paid in full"),
        ("CLM-5120", OTHER_MEMBERS[0], f"{year}-01-09", "Bright Smile Dental",
         "Dental cleaning", 22000, 17600, "approved", "payment scheduled"),
        ("CLM-6002", OTHER_MEMBERS[1], f"{year}-03-30", "Lakeside Imaging",
         "MRI scan", 121000, 0, "denied", "needs prior authorisation"),
    )  # fmt: skip
    slots: list[tuple[str, str, int, str]] = []
    day = today
    while len(slots) < slot_days * len(SLOT_TIMES):
        day += timedelta(days=1)
        if day.weekday() >= 5:
            continue
        for i, at in enumerate(SLOT_TIMES):
            slot_id = f"SLOT-{day:%Y%m%d}-{at.replace(':', '')}"
            advisor = ADVISORS[(day.toordinal() + i) % len(ADVISORS)]
            slots.append((slot_id, f"{day.isoformat()}T{at}", 30, advisor))
    with backend.transaction() as tx:
        for m in members:
            tx.execute(
                "INSERT INTO tool_members (member_id, policy_number, first_name, last_name,"
                " date_of_birth) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (m.member_id, m.policy_number, m.first_name, m.last_name, m.date_of_birth),
            )
            if m.phone:
                tx.execute(
                    "INSERT INTO tool_member_phones (member_id, phone) VALUES (?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (m.member_id, m.phone),
                )
        for plan in PLANS:
            tx.execute(
                "INSERT INTO tool_plans (plan_code, name, base_monthly_cents,"
                " default_deductible_cents) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                plan,
            )
            for deductible, factor in DEDUCTIBLE_FACTORS:
                tx.execute(
                    "INSERT INTO tool_deductibles (plan_code, deductible_cents, factor_pct)"
                    " VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    (plan[0], deductible, factor),
                )
        for rider in RIDERS:
            tx.execute(
                "INSERT INTO tool_riders (rider_code, name, monthly_cents) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                rider,
            )
        for policy in policies:
            tx.execute(
                "INSERT INTO tool_policies (policy_number, member_id, plan_code, status,"
                " start_date, deductible_cents, monthly_premium_cents, riders)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                policy,
            )
        for cid, member, service, provider, what, cents, paid, status, detail in claims:
            tx.execute(
                "INSERT INTO tool_claims (claim_id, member_id, policy_number, service_date,"
                " provider, description, amount_cents, paid_cents, status, status_detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (cid, member.member_id, member.policy_number, service, provider, what, cents,
                 paid, status, detail),
            )  # fmt: skip
        for slot in slots:
            tx.execute(
                "INSERT INTO tool_slots (slot_id, starts_at, duration_min, advisor)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                slot,
            )
    return SeedSummary(len(members), len(claims), len(slots), "CLM-4821")
