"""The dashboard's figures are the metrics projection's own numbers on the same data:
`/console/api/metrics` and its CSV, from a real server, against `threadline.projections.metrics.
build_metrics` run here over the same SQLite database."""

from __future__ import annotations

import csv
import io
import json
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.api_server import OPERATOR_PASSWORD as PASSWORD
from harness.api_server import ApiServer, create_key
from tests.support import console_seed
from threadline.channels.console.dashboard import flatten, overall_rows
from threadline.channels.console.wiring import open_accounts
from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.store import open_ledger
from threadline.projections.metrics import build_metrics


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('console-metrics') / 'threadline.db'}"
    ledger = open_ledger(url)
    try:
        console_seed.population(ledger)
    finally:
        ledger.close()
    open_accounts(url).create("ops", PASSWORD)
    return url


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with ApiServer(db_url, tmp_path_factory.mktemp("log") / "server.log") as srv:
        yield srv


@pytest.fixture(scope="module")
def operator(server: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        response = client.post("/console/api/login", json={"name": "ops", "password": PASSWORD})
        assert response.status_code == 200
        yield client


def all_events(db_url: str) -> list[RecordedEvent]:
    ledger = open_ledger(db_url)
    try:
        out: list[RecordedEvent] = []
        while batch := ledger.read_all(after=out[-1].sequence if out else 0, limit=50):
            out.extend(batch)
        return out
    finally:
        ledger.close()


def by_start_day(events: list[RecordedEvent]) -> dict[str, list[RecordedEvent]]:
    day_of: dict[str, str] = {}
    out: dict[str, list[RecordedEvent]] = defaultdict(list)
    for e in events:
        out[day_of.setdefault(e.conversation_id, e.occurred_at.date().isoformat())].append(e)
    return out


def reference(events: list[RecordedEvent]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(build_metrics(events).model_dump_json())
    return doc


def test_dashboard_equals_the_metrics_projection(operator: httpx.Client, db_url: str) -> None:
    figures = operator.get("/console/api/metrics").json()
    events = all_events(db_url)
    expected = reference(events)
    assert figures["overall"] == expected
    # The seeded population has known answers, so the comparison is not between two zeros.
    assert expected["funnel"]["offered"] == 6
    assert expected["funnel"]["completed"] == 4
    assert expected["switched_conversations"] == 4
    assert expected["reverification_rate"] == pytest.approx(0.25)
    days = by_start_day(events)
    assert [s["day"] for s in figures["series"]] == sorted(days)
    for series in figures["series"]:
        assert series["metrics"] == reference(days[series["day"]])
    assert figures["overall_rows"] == overall_rows(expected)


def test_dashboard_follows_new_events(
    operator: httpx.Client, db_url: str, server: ApiServer
) -> None:
    ledger = open_ledger(db_url)
    try:
        console_seed.switched(ledger, "conv-late-switch", day=3, reverify=True, csat=1)
    finally:
        ledger.close()
    figures = operator.get("/console/api/metrics").json()
    expected = reference(all_events(db_url))
    assert figures["overall"] == expected
    assert figures["series"][-1]["day"] == "2025-03-06"


def test_metrics_csv_has_the_same_numbers(operator: httpx.Client, db_url: str) -> None:
    response = operator.get("/console/api/metrics.csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    events = all_events(db_url)
    expected = {"all": flatten(reference(events))} | {
        day: flatten(reference(evs)) for day, evs in by_start_day(events).items()
    }
    assert [r["period"] for r in rows] == ["all", *sorted(expected.keys() - {"all"})]
    for row in rows:
        want = expected[row["period"]]
        for column, value in want.items():
            cell = row[column]
            if value is None:
                assert cell == ""
            elif isinstance(value, float):
                assert float(cell) == pytest.approx(value)
            else:
                assert cell == str(value)


def test_dashboard_equals_the_apis_tracked_read_model(
    operator: httpx.Client, server: ApiServer, db_url: str
) -> None:
    """The console folds in memory; the API serves the tracked read model its background
    runner maintains. Once the runner has caught up, both say the same."""
    key = create_key(db_url, name="metrics-reader")
    deadline = time.monotonic() + 30
    with server.client(key) as api:
        while True:
            served = api.get("/v1/metrics/handoff")
            assert served.status_code == 200, served.text
            doc = served.json()
            human = doc.pop("human")  # projections/human_metrics.py: the console's own endpoint
            if doc.pop("lag") == 0:
                break
            assert time.monotonic() < deadline, "the metrics read model did not catch up"
            time.sleep(0.2)
    assert "time_to_human_seconds" in human
    assert operator.get("/console/api/metrics").json()["overall"] == doc
    assert human == operator.get("/console/api/metrics/human").json()
