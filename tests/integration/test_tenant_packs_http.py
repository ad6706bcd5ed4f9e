"""Packs per tenant through the served app (real uvicorn, SQLite): two API keys of two
tenants, one server started with THREADLINE_AGENT_TENANT_PACKS. The same dishwasher chat
that mentions "covered", "policy" and "claim" is answered from acme's appliances pack and
never with insurance questions; globex's claim question gets the insurance pack."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from harness.api_server import ApiServer, create_key

DISHWASHER = (
    "my dishwasher leaked and flooded the floor, is that covered by my policy?",
    "i want to make a claim for the damage",
)
INSURANCE_WORDS = ("policy number", "member or policy", "date of birth")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, dict[str, str]]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('packs') / 'threadline.db'}"
    keys = {t: create_key(url, f"adapter-{t}", t) for t in ("acme", "globex")}
    log = tmp_path_factory.mktemp("log") / "server.log"
    packs = "acme=retail,appliances;globex=insurance"
    with ApiServer(url, log, THREADLINE_AGENT_TENANT_PACKS=packs) as srv:
        yield srv, keys


def chat(server: ApiServer, key: str, turns: tuple[str, ...]) -> list[str]:
    with server.client(key) as c:
        r = c.post("/v1/conversations", json={"channel": "chat"})
        assert r.status_code == 201, r.text
        cid, token = r.json()["conversation_id"], r.json()["visitor_token"]
    replies = []
    with server.client(token) as c:
        for text in turns:
            r = c.post(
                f"/v1/conversations/{cid}/messages",
                json={"text": text, "message_id": str(uuid.uuid4())},
            )
            assert r.status_code in (200, 201), r.text
            replies.append(r.json()["reply"].lower())
    return replies


def test_acme_dishwasher_chat_never_gets_insurance(
    served: tuple[ApiServer, dict[str, str]],
) -> None:
    server, keys = served
    replies = chat(server, keys["acme"], DISHWASHER)
    assert not [r for r in replies if any(w in r for w in INSURANCE_WORDS)], replies
    assert "engineer" in replies[0]


def test_globex_claim_gets_insurance(served: tuple[ApiServer, dict[str, str]]) -> None:
    server, keys = served
    [reply] = chat(server, keys["globex"], ("Hi, I have a question about my January claim",))
    assert "date of birth" in reply
    [reply] = chat(server, keys["globex"], DISHWASHER[:1])
    assert "engineer" not in reply  # globex has no appliances pack


def test_an_unknown_pack_stops_the_server(tmp_path_factory: pytest.TempPathFactory) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('bad') / 'threadline.db'}"
    log = tmp_path_factory.mktemp("log") / "server.log"
    server = ApiServer(url, log, THREADLINE_AGENT_TENANT_PACKS="acme=retail,bogus")
    with pytest.raises(RuntimeError, match="no agent pack named 'bogus'"):
        server.start()
