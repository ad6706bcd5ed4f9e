"""The tools over real tables: the same contract on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from threadline.agent.sqltools import open_tool_backend
from threadline.agent.sqltools.seed import DEMO_MEMBER, OTHER_MEMBERS, seed
from threadline.agent.sqltools.sql import SqlToolBackend
from threadline.agent.tools import run_tool
from threadline.handoff.errors import ToolError

TODAY = date(2026, 11, 20)  # a Friday
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlToolBackend]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tools.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    tools = open_tool_backend(url)
    tools._clock = lambda: NOW
    seed(tools, today=TODAY)
    yield tools
    tools.close()


def test_seed_is_idempotent(backend: SqlToolBackend) -> None:
    before = backend.lookup(DEMO_MEMBER.member_id, "claim")
    again = seed(backend, today=TODAY)
    assert again.january_claim == "CLM-4821"
    assert backend.lookup(DEMO_MEMBER.member_id, "claim") == before


def test_find_member_by_either_number_any_spelling(backend: SqlToolBackend) -> None:
    for spelling in ("MBR-100234", "mbr100234", "pol 558812", "POL-558812"):
        member = backend.find_member(spelling)
        assert member is not None
        assert member.member_id == DEMO_MEMBER.member_id
        assert member.date_of_birth == DEMO_MEMBER.date_of_birth
    assert backend.find_member("MBR-999999") is None
    assert backend.find_member("--") is None


def test_january_claim_lookup_is_scoped_to_the_member(backend: SqlToolBackend) -> None:
    (claim,) = backend.lookup(DEMO_MEMBER.member_id, "claim", month=1)
    assert claim["reference"] == "CLM-4821"
    assert claim["service_date"] == "2026-01-14"
    assert claim["amount"] == "$2,340.00"
    assert claim["status"] == "pending_review"
    others = backend.lookup(OTHER_MEMBERS[0].member_id, "claim", month=1)
    assert [c["reference"] for c in others] == ["CLM-5120"]
    # Another member's claim number gives nothing, not their claim.
    assert backend.lookup(DEMO_MEMBER.member_id, "claim", reference="CLM-5120") == []
    assert backend.lookup(DEMO_MEMBER.member_id, "claim", reference="clm 4821")[0]["month"] == 1


def test_policy_lookup(backend: SqlToolBackend) -> None:
    (policy,) = backend.lookup(DEMO_MEMBER.member_id, "policy")
    assert policy["plan"] == "Silver"
    assert policy["riders"] == ["Dental"]


def test_schedule_books_once_per_call_id(backend: SqlToolBackend) -> None:
    free = backend.lookup(DEMO_MEMBER.member_id, "slot")
    assert free
    assert all(s["starts_at"] > "2026-11-20T12:00" for s in free)
    booked = backend.schedule(
        DEMO_MEMBER.member_id, slot_id=None, date="2026-11-23", topic="claim", idempotency_key="c1"
    )
    assert booked["starts_at"] == "2026-11-23T09:00"
    retried = backend.schedule(
        DEMO_MEMBER.member_id, slot_id=None, date="2026-11-23", topic="claim", idempotency_key="c1"
    )
    assert retried == booked
    (mine,) = backend.lookup(DEMO_MEMBER.member_id, "appointment")
    assert mine["reference"] == booked["reference"]
    with pytest.raises(ToolError, match="no longer available"):
        backend.schedule(
            OTHER_MEMBERS[0].member_id,
            slot_id="SLOT-20261123-0900",
            date=None,
            topic="x",
            idempotency_key="c2",
        )
    with pytest.raises(ToolError, match="no free slots on 2026-11-21"):  # a Saturday
        backend.schedule(
            DEMO_MEMBER.member_id, slot_id=None, date="2026-11-21", topic="x", idempotency_key="c3"
        )


def test_concurrent_bookings_never_share_a_slot(backend: SqlToolBackend) -> None:
    results: list[str] = []
    errors: list[str] = []

    def book(i: int) -> None:
        try:
            got = backend.schedule(
                DEMO_MEMBER.member_id,
                slot_id="SLOT-20261124-1030",
                date=None,
                topic="race",
                idempotency_key=f"race-{i}",
            )
            results.append(got["reference"])
        except ToolError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=book, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 1
    assert len(errors) == 7


def test_quote_prices_plans_riders_deductibles_and_age(backend: SqlToolBackend) -> None:
    plain = backend.quote(plan="Silver", riders=[], deductible=None, age=None)
    assert plain["monthly_total"] == "$312.00"
    assert plain["deductible"] == "$1,000.00"
    rich = backend.quote(
        plan="gold plan", riders=["Dental rider", "vision"], deductible=500, age=62
    )
    # 455.00 x 1.80 (60+) x 1.12 ($500) = 917.28, + 28 + 12
    assert rich["plan_monthly"] == "$917.28"
    assert rich["monthly_total"] == "$957.28"
    assert rich["annual_total"] == "$11,487.36"
    with pytest.raises(ToolError, match="no plan called 'Diamond'"):
        backend.quote(plan="Diamond", riders=[], deductible=None, age=None)
    with pytest.raises(ToolError, match="no 'pet' rider"):
        backend.quote(plan="Silver", riders=["pet"], deductible=None, age=None)
    with pytest.raises(ToolError, match="deductible can be"):
        backend.quote(plan="Silver", riders=[], deductible=123, age=None)


def test_run_tool_guards_member_data(backend: SqlToolBackend) -> None:
    with pytest.raises(ToolError, match="verify your identity"):
        run_tool(backend, "lookup", {"kind": "claim"}, member=None, call_id="x")
    with pytest.raises(ToolError, match="kind"):
        run_tool(backend, "lookup", {"kind": "secrets"}, member=None, call_id="x")
    with pytest.raises(ToolError, match="no tool"):
        run_tool(backend, "delete_everything", {}, member=None, call_id="x")
    member = backend.find_member(DEMO_MEMBER.policy_number)
    found = run_tool(backend, "lookup", {"kind": "claim", "month": 1}, member=member, call_id="x")
    assert [c["reference"] for c in found] == ["CLM-4821"]
    quote = run_tool(backend, "quote", {"plan": "Bronze"}, member=None, call_id="q")
    assert quote["plan"] == "Bronze"
