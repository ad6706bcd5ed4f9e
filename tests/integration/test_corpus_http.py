"""One corpus scenario through the served HTTP app (real uvicorn, SQLite): the visitor's
messages go through the widget route, the offer is accepted through the handoff route, and
the first utterance is generated from the stream replayed out of the database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import corpus as runner
from harness.api_server import ApiServer
from threadline.handoff.first_utterance import OfflineUtterances
from threadline.ledger.store import open_ledger
from threadline.projections.context import build_context


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('corpus') / 'threadline.db'}"
    with ApiServer(url, tmp_path_factory.mktemp("log") / "server.log") as srv:
        yield srv, url


def test_dishwasher_chat_over_http(served: tuple[ApiServer, str], tmp_path: Path) -> None:
    server, url = served
    scenario = next(s for s in runner.load() if s.id == "appl-dishwasher-leak")
    with server.client() as c:
        conv = c.post("/v1/conversations", json={"channel": "chat"}).json()
    cid = conv["conversation_id"]
    replies, offered = [], None
    with server.client(conv["visitor_token"]) as c:
        for text in scenario.turns:
            r = c.post(
                f"/v1/conversations/{cid}/messages",
                json={"text": text, "message_id": str(uuid.uuid4())},
            )
            assert r.status_code in (200, 201), r.text
            replies.append(r.json()["reply"])
            offered = offered or r.json()["handoff_offered"]
        assert offered is not None  # out of domain: a person or a call is offered, recorded
        accepted = c.post(f"/v1/conversations/{cid}/handoffs", json={"handoff_id": offered})
        assert accepted.status_code == 201, accepted.text
    assert replies[0] != replies[1]
    for reply in replies:
        assert "policy" not in reply.lower()
        assert "member" not in reply.lower()
    ledger = open_ledger(url)
    try:
        first = OfflineUtterances().generate(build_context(ledger.read(cid)), level=0, reason=None)
    finally:
        ledger.close()
    for fact in scenario.facts:
        assert fact.lower() in first.lower(), first
