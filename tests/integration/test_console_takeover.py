"""A person takes over a chat, on the real server (the full app, uvicorn on loopback, SQLite):
asking for a person, the queue, join / message / leave, the AI silent while a person holds
the conversation and resuming with the operator's words; two operators racing to join; and
nobody online (a callback offered, never a dead end)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from harness.api_server import ApiServer, create_key
from tests.integration.test_console_access import PASSWORD, create_operator
from threadline.ledger.store import open_ledger


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    url = f"sqlite:///{tmp_path_factory.mktemp('takeover') / 'threadline.db'}"
    for name in ("alice", "bob"):
        done = create_operator(url, name, PASSWORD)
        assert done.returncode == 0, done.stderr
    with ApiServer(url, tmp_path_factory.mktemp("log") / "server.log") as srv:
        yield srv


@contextmanager
def operator(server: ApiServer, name: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=20) as client:
        r = client.post("/console/api/login", json={"name": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        yield client


_OPEN: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_visitors() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


class Visitor:
    def __init__(self, server: ApiServer) -> None:
        self.client = httpx.Client(base_url=server.base_url, timeout=30)
        _OPEN.append(self.client)
        r = self.client.post("/v1/conversations", json={"channel": "chat"})
        assert r.status_code == 201, r.text
        self.cid: str = r.json()["conversation_id"]
        self.client.headers["Authorization"] = "Bearer " + r.json()["visitor_token"]

    def say(self, text: str) -> str | None:
        r = self.client.post(f"/v1/conversations/{self.cid}/messages", json={"text": text})
        assert r.status_code == 201, r.text
        reply: str | None = r.json()["reply"]
        return reply

    def events(self) -> list[dict[str, Any]]:
        r = self.client.get(f"/v1/conversations/{self.cid}/events", params={"limit": 1000})
        assert r.status_code == 200, r.text
        events: list[dict[str, Any]] = r.json()["events"]
        return events

    def types(self) -> list[str]:
        return [e["type"] for e in self.events()]


def test_nobody_online_is_told_so_and_offered_a_callback(server: ApiServer) -> None:
    visitor = Visitor(server)
    reply = visitor.say("Can I speak to a person please?")
    assert reply is not None
    assert "Nobody from the team is online" in reply
    assert "callback" in reply
    assert visitor.types().count("HumanRequested") == 1
    # Still listed for whoever comes online: the visitor can leave a message.
    with operator(server, "bob") as bob:
        items = bob.get("/console/api/queue").json()["items"]
    assert visitor.cid in [i["conversation_id"] for i in items]


def test_take_over_talk_and_hand_back(server: ApiServer) -> None:
    with operator(server, "alice") as alice:
        assert alice.post("/console/api/presence", json={"available": True}).status_code == 200
        visitor = Visitor(server)
        visitor.say("I have a question about my claim")
        reply = visitor.say("real human please")
        assert reply is not None
        assert re.search(r"number \d+ in the queue", reply), reply
        assert "expected wait" in reply

        queue = alice.get("/console/api/queue").json()
        entry = next(i for i in queue["items"] if i["conversation_id"] == visitor.cid)
        assert entry["channel"] == "chat"
        assert entry["wait_seconds"] >= 0
        assert "alice" in queue["operators_online"]
        assert "person" in entry["summary"]

        r = alice.post(f"/console/api/conversations/{visitor.cid}/join")
        assert r.status_code == 201, r.text
        ids = [i["conversation_id"] for i in alice.get("/console/api/queue").json()["items"]]
        assert visitor.cid not in ids

        before = len(visitor.events())
        assert visitor.say("hello, is anyone there?") is None  # the AI stays silent
        assert len(visitor.events()) == before + 1  # only the visitor's message

        said = "Your claim CLM-7 was approved this morning"
        r = alice.post(f"/console/api/conversations/{visitor.cid}/messages", json={"text": said})
        assert r.status_code == 201, r.text
        posted = visitor.events()[-1]
        assert posted["data"] == {"role": "operator", "text": said}
        assert posted["actor"] == "operator:alice"

        assert alice.post(f"/console/api/conversations/{visitor.cid}/leave").status_code == 201
        again = alice.post(f"/console/api/conversations/{visitor.cid}/leave")
        assert again.status_code == 409

        reply = visitor.say("thanks, and what else do I need?")
        assert reply is not None
        assert said in reply, reply
        alice.post("/console/api/presence", json={"available": False})


def test_two_operators_race_to_join(server: ApiServer) -> None:
    visitor = Visitor(server)
    visitor.say("agent!")
    with operator(server, "alice") as alice, operator(server, "bob") as bob:
        results: dict[str, int] = {}
        start = threading.Barrier(2)

        def join(name: str, client: httpx.Client) -> None:
            start.wait()
            path = f"/console/api/conversations/{visitor.cid}/join"
            results[name] = client.post(path).status_code

        threads = [
            threading.Thread(target=join, args=(n, c)) for n, c in (("alice", alice), ("bob", bob))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results.values()) == [201, 409], results
        assert visitor.types().count("OperatorJoined") == 1
        loser = bob if results["bob"] == 409 else alice
        r = loser.post(f"/console/api/conversations/{visitor.cid}/messages", json={"text": "hi"})
        assert r.status_code == 409
        assert visitor.types().count("OperatorJoined") == 1
        roles = [e["data"].get("role") for e in visitor.events()]
        assert "operator" not in roles


def test_operator_actions_need_a_session_and_same_origin(server: ApiServer) -> None:
    visitor = Visitor(server)
    with httpx.Client(base_url=server.base_url, timeout=10) as anonymous:
        r = anonymous.post(f"/console/api/conversations/{visitor.cid}/join")
        assert r.status_code == 401
        assert anonymous.get("/console/api/queue").status_code == 401
    with operator(server, "bob") as bob:
        r = bob.post(
            f"/console/api/conversations/{visitor.cid}/join",
            headers={"Origin": "https://evil.example"},
        )
        assert r.status_code == 403
        assert bob.post("/console/api/conversations/nope/join").status_code == 404
    assert "OperatorJoined" not in visitor.types()


def test_handoff_to_a_person_is_measured(server: ApiServer) -> None:
    visitor = Visitor(server)
    visitor.say("I need a real person")
    with operator(server, "bob") as bob:
        assert bob.post(f"/console/api/conversations/{visitor.cid}/join").status_code == 201
        human = bob.get("/console/api/metrics/human").json()
        assert bob.post(f"/console/api/conversations/{visitor.cid}/leave").status_code == 201
    assert human["taken_over"] >= 1
    assert human["time_to_human_seconds"]["count"] >= 1
    assert human["reverified_after_transfer"] == 0
    key = create_key(server.database_url, name="metrics")
    with server.client(key) as c:
        doc = c.get("/v1/metrics/handoff").json()
    assert doc["human"]["taken_over"] == human["taken_over"]
    assert set(doc["human"]["by_resolver"]) == {"ai", "ai_voice", "person"}


def test_operators_see_only_their_tenant(tmp_path_factory: pytest.TempPathFactory) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('tenant') / 'threadline.db'}"
    assert create_operator(url, "alice", PASSWORD).returncode == 0
    log = tmp_path_factory.mktemp("log") / "server.log"
    with ApiServer(url, log, THREADLINE_CONSOLE_TENANT="acme") as other:
        visitor = Visitor(other)  # an anonymous widget visitor: the public tenant, not acme
        visitor.say("can I talk to a human?")
        with operator(other, "alice") as alice:
            assert alice.get("/console/api/queue").json()["items"] == []
            r = alice.post(f"/console/api/conversations/{visitor.cid}/join")
            assert r.status_code == 404
        visitor.client.close()
    ledger = open_ledger(url)
    try:
        assert "OperatorJoined" not in [e.type for e in ledger.read(visitor.cid)]
    finally:
        ledger.close()


_ACTIONS = [  # every operator action on one conversation: (method, path tail, JSON body)
    ("POST", "join", None),
    ("POST", "messages", {"text": "hello"}),
    ("POST", "leave", None),
    ("POST", "call", {"sdp": "v=0", "type": "offer"}),
    ("DELETE", "call", None),
    ("POST", "call-visitor", None),
]


@pytest.mark.parametrize(("method", "tail", "body"), _ACTIONS)
def test_every_operator_action_refuses_alike(
    server: ApiServer, method: str, tail: str, body: dict[str, str] | None
) -> None:
    """One prelude serves join, message, leave, join-call, leave-call and call-visitor: the
    same checks in the same order with the same JSON errors, and nothing appended for a
    refusal."""
    visitor = Visitor(server)
    before = visitor.types()
    with operator(server, "bob") as bob:

        def act(cid: str, **headers: str) -> httpx.Response:
            return bob.request(
                method, f"/console/api/conversations/{cid}/{tail}", json=body, headers=headers
            )

        r = act("x" * 201)
        assert (r.status_code, r.json()["error"]) == (422, "invalid_input")
        # An invalid id is refused before the origin is looked at.
        r = act("x" * 201, Origin="https://evil.example")
        assert (r.status_code, r.json()["error"]) == (422, "invalid_input")
        r = act(visitor.cid, Origin="https://evil.example")
        assert r.json() == {
            "error": "forbidden",
            "detail": "cross-origin operator action refused",
        }
        assert r.status_code == 403
        r = act("no-such-conversation")
        assert r.json() == {
            "error": "not_found",
            "detail": "no conversation 'no-such-conversation'",
        }
        assert r.status_code == 404
        assert r.headers["Cache-Control"] == "no-store"
    assert visitor.types() == before
