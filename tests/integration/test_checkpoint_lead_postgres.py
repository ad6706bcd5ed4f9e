"""Of several replicas on one PostgreSQL database, one signs checkpoints: the advisory lock
is held by one `PostgresLead` at a time, and another takes over once the holder is gone."""

from __future__ import annotations

import pytest

from threadline.ledger.backends import Backend
from threadline.ledger.checkpoint_lead_postgres import PostgresLead

pytestmark = pytest.mark.postgres


def test_one_replica_leads_and_another_takes_over(fresh_postgres_url: str) -> None:
    dsn = Backend.parse(fresh_postgres_url).dsn
    first, second = PostgresLead(dsn), PostgresLead(dsn)
    try:
        assert first.lead() is True
        assert second.lead() is False
        assert first.lead() is True  # still the writer on the next run
        first.close()  # the writing replica stops (or dies: its session goes)
        assert second.lead() is True
        assert first.lead() is False  # back, as a standby
    finally:
        first.close()
        second.close()
