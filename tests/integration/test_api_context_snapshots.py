"""`GET …/context[?upto=q]` through a real server that folds from context snapshots (issue 19):
every answer equals the fold from position 1, as the conversation grows, and the snapshots do
not change who may read it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.api_server import ApiServer, create_key
from threadline.ledger.store import open_ledger
from threadline.projections.context import build_context


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('snapshots') / 'threadline.db'}"


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with ApiServer(database_url, tmp_path_factory.mktemp("log") / "server.log") as srv:
        yield srv


def folded(database_url: str, cid: str, upto: int | None = None) -> dict[str, Any]:
    with open_ledger(database_url) as ledger:
        return build_context(ledger.read(cid, upto=upto)).model_dump(mode="json")


def post(c: Any, cid: str, role: str, text: str) -> None:
    body = {
        "event_id": str(uuid.uuid4()),
        "type": "MessagePosted",
        "data": {"role": role, "text": text},
    }
    assert c.post(f"/v1/conversations/{cid}/events", json=body).status_code == 201


def test_context_reads_equal_the_fold_from_position_1_and_stay_tenant_scoped(
    server: ApiServer, database_url: str
) -> None:
    key = create_key(database_url, name="adapter")
    other = create_key(database_url, name="elsewhere", tenant="acme")
    with server.client(key) as c:
        cid = c.post("/v1/conversations", json={"channel": "chat"}).json()["conversation_id"]
        post(c, cid, "visitor", "Hi, I have a question about my January claim CLM-48213.")
        post(c, cid, "agent", "Let me check that for you.")
        first = c.get(f"/v1/conversations/{cid}/context")  # leaves a snapshot at the head
        assert first.status_code == 200
        assert first.json() == folded(database_url, cid)
        post(c, cid, "visitor", "Why was only $120 paid?")
        post(c, cid, "agent", "The deductible of $250 applied to this claim.")
        head = c.get(f"/v1/conversations/{cid}/context")  # the snapshot + 2 new events
        assert head.json() == folded(database_url, cid)
        assert head.json()["turn_count"] == 4
        for q in range(1, 8):
            r = c.get(f"/v1/conversations/{cid}/context", params={"upto": q})
            assert r.status_code == 200, r.text
            assert r.json() == folded(database_url, cid, q), q
    with server.client(other) as c:
        for params in ({}, {"upto": 4}, {"upto": 6}):
            assert c.get(f"/v1/conversations/{cid}/context", params=params).status_code == 404


def test_a_conversation_that_does_not_exist_is_404(server: ApiServer, database_url: str) -> None:
    key = create_key(database_url, name="adapter-2")
    with server.client(key) as c:
        assert c.get("/v1/conversations/no-such-one/context").status_code == 404
        assert c.get("/v1/conversations/no-such-one/context", params={"upto": 3}).status_code == 404


def test_snapshots_can_be_turned_off(database_url: str, tmp_path: Path) -> None:
    key = create_key(database_url, name="adapter-3")
    with (
        ApiServer(
            database_url, tmp_path / "server.log", THREADLINE_PROJECTIONS_CONTEXT_SNAPSHOTS="0"
        ) as srv,
        srv.client(key) as c,
    ):
        cid = c.post("/v1/conversations", json={"channel": "chat"}).json()["conversation_id"]
        post(c, cid, "visitor", "about my delivery")
        assert c.get(f"/v1/conversations/{cid}/context").json() == folded(database_url, cid)
