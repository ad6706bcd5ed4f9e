"""The HTTP API against a real uvicorn server on SQLite (and PostgreSQL where available)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from harness.api_server import ApiServer, create_key
from threadline.ledger.envelope import NewEvent
from threadline.ledger.events import MessagePosted
from threadline.ledger.store import open_ledger

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('api') / 'threadline.db'}"
    cluster = request.getfixturevalue("postgres_cluster")
    url: str = cluster.create_database(f"api_{uuid.uuid4().hex[:12]}")
    return url


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    log = tmp_path_factory.mktemp("log") / "server.log"
    with ApiServer(
        # A slow refill, so the rate-limit test does not depend on how fast this machine is.
        database_url,
        log,
        THREADLINE_VISITOR_BURST="40",
        THREADLINE_VISITOR_RATE_PER_S="0.2",
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def key(database_url: str) -> str:
    return create_key(database_url, name="adapter")


@pytest.fixture(scope="module")
def other_tenant_key(database_url: str) -> str:
    return create_key(database_url, name="elsewhere", tenant="acme")


def start(server: ApiServer, token: str | None = None) -> dict[str, Any]:
    with server.client(token) as c:
        r = c.post("/v1/conversations", json={"channel": "chat"})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def message(text: str = "hello", role: str = "visitor", **extra: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "MessagePosted",
        "data": {"role": role, "text": text},
        **extra,
    }


def events_of(server: ApiServer, key: str, cid: str) -> list[dict[str, Any]]:
    with server.client(key) as c:
        r = c.get(f"/v1/conversations/{cid}/events", params={"limit": 1000})
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["events"]
    return events


def test_start_conversation_returns_token_and_opens_leg(server: ApiServer, key: str) -> None:
    conv = start(server)
    assert set(conv) >= {"conversation_id", "visitor_token", "leg_id"}
    events = events_of(server, key, conv["conversation_id"])
    assert [e["type"] for e in events] == ["ConversationStarted", "LegOpened"]
    assert events[1]["leg_id"] == conv["leg_id"]
    with server.client(conv["visitor_token"]) as c:
        own = c.get(f"/v1/conversations/{conv['conversation_id']}/events")
    assert own.status_code == 200
    assert [e["position"] for e in own.json()["events"]] == [1, 2]


def test_visitor_token_is_scoped_to_its_conversation(server: ApiServer, key: str) -> None:
    a, b = start(server), start(server)
    b_id = b["conversation_id"]
    with server.client(a["visitor_token"]) as c:
        for method, path, body in [
            ("GET", f"/v1/conversations/{b_id}/events", None),
            ("GET", f"/v1/conversations/{b_id}/transcript", None),
            ("GET", f"/v1/conversations/{b_id}/context", None),
            ("GET", f"/v1/conversations/{b_id}/identity", None),
            ("GET", f"/v1/conversations/{b_id}/stream", None),
            ("POST", f"/v1/conversations/{b_id}/messages", {"text": "let me in"}),
            ("POST", f"/v1/conversations/{b_id}/handoffs", {"handoff_id": "h1"}),
            ("POST", f"/v1/conversations/{b_id}/events", message()),
        ]:
            r = c.request(method, path, json=body)
            assert r.status_code in (403, 404), (path, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/json")
            assert b_id not in r.text or "error" in r.json()
        # A visitor cannot append adapter events even to its own conversation.
        r = c.post(f"/v1/conversations/{a['conversation_id']}/events", json=message())
        assert r.status_code == 403
        # Nor start a second conversation with its token.
        assert c.post("/v1/conversations", json={}).status_code == 403
    assert len(events_of(server, key, b_id)) == 2
    assert len(events_of(server, key, a["conversation_id"])) == 2


def test_api_key_of_another_tenant_sees_nothing(
    server: ApiServer, key: str, other_tenant_key: str
) -> None:
    conv = start(server)
    cid = conv["conversation_id"]
    with server.client(other_tenant_key) as c:
        assert c.get(f"/v1/conversations/{cid}/events").status_code == 404
        assert c.post(f"/v1/conversations/{cid}/events", json=message()).status_code == 404
        own = c.post("/v1/conversations", json={"channel": "sms", "transport_ref": "+15550100"})
        assert own.status_code == 201
        assert c.get(f"/v1/conversations/{own.json()['conversation_id']}/events").status_code == 200
    with server.client(key) as c:
        assert c.get(f"/v1/conversations/{own.json()['conversation_id']}/events").status_code == 404
    assert len(events_of(server, key, cid)) == 2


@pytest.mark.parametrize(
    "token",
    ["", "tlk_0000000000000000_" + "A" * 43, "tl1.e30.AAAA", "garbage", "tlk_short"],
)
def test_bad_credentials_are_401(server: ApiServer, key: str, token: str) -> None:
    cid = start(server)["conversation_id"]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with server.client() as c:
        r = c.post(f"/v1/conversations/{cid}/events", json=message(), headers=headers)
    assert r.status_code == 401
    assert r.json()["error"] == "unauthenticated"
    assert len(events_of(server, key, cid)) == 2


def test_duplicate_event_id_returns_original_position(server: ApiServer, key: str) -> None:
    cid = start(server)["conversation_id"]
    event = message("first")
    with server.client(key) as c:
        first = c.post(f"/v1/conversations/{cid}/events", json=event)
        again = c.post(f"/v1/conversations/{cid}/events", json=event)
        altered = {**event, "data": {"role": "visitor", "text": "x"}}
        changed = c.post(f"/v1/conversations/{cid}/events", json=altered)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["position"] == first.json()["position"] == 3
    assert again.json()["sequence"] == first.json()["sequence"]
    assert again.json()["duplicate"] is True
    assert changed.status_code == 409
    assert [e["type"] for e in events_of(server, key, cid)].count("MessagePosted") == 1


def test_stale_expected_version_is_409_and_appends_nothing(server: ApiServer, key: str) -> None:
    cid = start(server)["conversation_id"]
    with server.client(key) as c:
        ok = c.post(f"/v1/conversations/{cid}/events", json=message(expected_version=2))
        stale = c.post(f"/v1/conversations/{cid}/events", json=message(expected_version=2))
    assert ok.status_code == 201
    assert ok.json()["position"] == 3
    assert stale.status_code == 409
    assert stale.json()["error"] == "version_conflict"
    assert stale.json()["actual_version"] == 3
    assert len(events_of(server, key, cid)) == 3


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"type": "NoSuchEvent", "data": {}}, 422),
        ({"type": "MessagePosted", "data": {"role": "robot", "text": "hi"}}, 422),
        ({"type": "MessagePosted", "data": {"role": "visitor", "text": ""}}, 422),
        ({"type": "MessagePosted", "data": {"role": "visitor", "text": "hi", "extra": 1}}, 422),
        ({"type": "ConversationStarted", "data": {"channel": "chat"}}, 422),
        ({"type": "MessagePosted", "data": "not an object"}, 422),
        ({"type": "MessagePosted", "data": {"role": "visitor", "text": "hi"}, "x": 1}, 422),
        (
            {
                "type": "MessagePosted",
                "data": {"role": "visitor", "text": "hi"},
                "expected_version": -1,
            },
            422,
        ),
    ],
)
def test_invalid_events_are_422_and_append_nothing(
    server: ApiServer, key: str, body: dict[str, Any], status: int
) -> None:
    cid = start(server)["conversation_id"]
    with server.client(key) as c:
        r = c.post(f"/v1/conversations/{cid}/events", json={"event_id": str(uuid.uuid4()), **body})
    assert r.status_code == status, r.text
    assert set(r.json()) >= {"error", "detail"}
    assert len(events_of(server, key, cid)) == 2


def test_unknown_conversation_is_404(server: ApiServer, key: str) -> None:
    with server.client(key) as c:
        r = c.post(f"/v1/conversations/{uuid.uuid4().hex}/events", json=message())
        assert r.status_code == 404
        assert r.json()["error"] == "not_found"
        assert c.get(f"/v1/conversations/{uuid.uuid4().hex}/events").status_code == 404


def test_framework_errors_are_json(server: ApiServer, key: str) -> None:
    with server.client(key) as c:
        for r, status in [
            (c.get("/v1/nope"), 404),
            (c.delete("/healthz"), 405),
            (
                c.post(
                    "/v1/conversations/abc/events",
                    content=b"{not json",
                    headers={"content-type": "application/json"},
                ),
                422,
            ),
            (c.get("/v1/conversations/abc/events", params={"limit": 0}), 422),
        ]:
            assert r.status_code == status
            assert r.headers["content-type"] == "application/json"
            assert set(r.json()) >= {"error", "detail"}


def test_body_and_text_limits(server: ApiServer, key: str) -> None:
    conv = start(server)
    cid = conv["conversation_id"]
    with server.client(key) as c:
        big = message("x" * 70_000)
        r = c.post(f"/v1/conversations/{cid}/events", json=big)
        assert r.status_code == 413
        assert r.json()["error"] == "payload_too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
            yield json.dumps(big).encode()

        r = c.post(
            f"/v1/conversations/{cid}/events",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413
    with server.client(conv["visitor_token"]) as c:
        r = c.post(f"/v1/conversations/{cid}/messages", json={"text": "y" * 4001})
        assert r.status_code == 422
    assert len(events_of(server, key, cid)) == 2


def test_visitor_rate_limit_is_429_with_retry_after(server: ApiServer) -> None:
    conv = start(server)
    with server.client(conv["visitor_token"]) as c:
        codes = [
            c.get(f"/v1/conversations/{conv['conversation_id']}/events").status_code
            for _ in range(60)
        ]
        limited = c.get(f"/v1/conversations/{conv['conversation_id']}/events")
    assert codes.count(200) >= 35
    assert 429 in codes
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1


def read_sse(response: httpx.Response, count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    data: list[str] = []
    for line in response.iter_lines():
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            events.append(json.loads("\n".join(data)))
            data = []
            if len(events) == count:
                break
    return events


def test_stream_delivers_live_events_and_resumes(server: ApiServer, key: str) -> None:
    conv = start(server)
    cid = conv["conversation_id"]
    received: list[dict[str, Any]] = []

    def listen() -> None:
        with (
            server.client(conv["visitor_token"]) as c,
            c.stream("GET", f"/v1/conversations/{cid}/stream", timeout=20.0) as r,
        ):
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            received.extend(read_sse(r, 5))

    listener = threading.Thread(target=listen)
    listener.start()
    with server.client(key) as c:
        for i in range(3):
            r = c.post(f"/v1/conversations/{cid}/events", json=message(f"m{i}"))
            assert r.status_code == 201
    listener.join(timeout=20)
    assert not listener.is_alive()
    assert [e["position"] for e in received] == [1, 2, 3, 4, 5]
    assert [e["data"].get("text") for e in received[2:]] == ["m0", "m1", "m2"]

    with (
        server.client(conv["visitor_token"]) as c,
        c.stream(
            "GET", f"/v1/conversations/{cid}/stream", headers={"Last-Event-ID": "3"}, timeout=20.0
        ) as r,
    ):
        resumed = read_sse(r, 2)
    assert [e["position"] for e in resumed] == [4, 5]

    with server.client(conv["visitor_token"]) as c:
        bad = c.get(f"/v1/conversations/{cid}/stream", headers={"Last-Event-ID": "x"})
    assert bad.status_code == 422


def test_openapi_metrics_and_health(server: ApiServer) -> None:
    with server.client() as c:
        spec = c.get("/openapi.json").json()
        assert spec["openapi"].startswith("3.1")
        for path in [
            "/v1/conversations",
            "/v1/conversations/{conversation_id}/events",
            "/v1/conversations/{conversation_id}/stream",
            "/v1/conversations/{conversation_id}/messages",
            "/v1/conversations/{conversation_id}/transcript",
            "/v1/metrics/handoff",
        ]:
            assert path in spec["paths"], path
        assert c.get("/healthz").json()["status"] == "ok"
        metrics = c.get("/metrics")
        assert metrics.status_code == 200
        assert "threadline_http_requests_total{" in metrics.text
        assert c.get("/v1/metrics/handoff").status_code == 401


def test_secrets_never_reach_the_log(server: ApiServer, key: str) -> None:
    conv = start(server)
    with server.client(conv["visitor_token"]) as c:
        c.get(f"/v1/conversations/{conv['conversation_id']}/events")
    with server.client(key) as c:
        c.get(f"/v1/conversations/{conv['conversation_id']}/events")
    log = server.log()
    assert "GET /v1/conversations/" in log  # the access log is on
    secret_part = key.split("_", 2)[2]
    assert secret_part not in log
    assert conv["visitor_token"] not in log
    assert "test-secret" not in log


def test_widget_and_embed_are_served(server: ApiServer) -> None:
    with server.client() as c:
        js = c.get("/widget.js")
        page = c.get("/embed")
    assert js.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert "window.Threadline" in js.text
    assert page.status_code == 200
    assert '<script src="/widget.js"' in page.text
    assert "http://" not in page.text
    assert "https://" not in page.text


def test_accepting_a_handoff_offer_returns_a_ticket(server: ApiServer, key: str) -> None:
    conv = start(server)
    cid = conv["conversation_id"]
    offer = {
        "event_id": str(uuid.uuid4()),
        "type": "HandoffOffered",
        "data": {"handoff_id": "h-offer-1", "channel": "webrtc", "reason": "complex pricing"},
    }
    with server.client(key) as c:
        assert c.post(f"/v1/conversations/{cid}/events", json=offer).status_code == 201
    with server.client(conv["visitor_token"]) as c:
        wrong = c.post(f"/v1/conversations/{cid}/handoffs", json={"handoff_id": "nope"})
        assert wrong.status_code == 409
        assert len(events_of(server, key, cid)) == 3
        ok = c.post(f"/v1/conversations/{cid}/handoffs", json={"handoff_id": "h-offer-1"})
    assert ok.status_code == 201, ok.text
    ticket = ok.json()
    assert ticket["handoff_id"] == "h-offer-1"
    assert ticket["handoff_token"].startswith("tl1.")
    assert ticket["level"] == 0
    types = [e["type"] for e in events_of(server, key, cid)]
    assert types[-1] == "HandoffAccepted"
    # The ticket's token is a handoff token: it is no visitor token anywhere.
    with server.client(ticket["handoff_token"]) as c:
        assert c.get(f"/v1/conversations/{cid}/events").status_code == 401


def test_projections_are_served_and_point_in_time(server: ApiServer, key: str) -> None:
    conv = start(server)
    cid = conv["conversation_id"]
    with server.client(key) as c:
        c.post(f"/v1/conversations/{cid}/events", json=message("about my January claim"))
        c.post(f"/v1/conversations/{cid}/events", json=message("sure, one moment", "agent"))
    with server.client(conv["visitor_token"]) as c:
        context = c.get(f"/v1/conversations/{cid}/context")
        transcript = c.get(f"/v1/conversations/{cid}/transcript")
        earlier = c.get(f"/v1/conversations/{cid}/transcript", params={"upto": 3})
        identity = c.get(f"/v1/conversations/{cid}/identity")
    for r in (context, transcript, earlier, identity):
        assert r.status_code == 200, r.text
    assert context.json()["conversation_id"] == cid
    texts = json.dumps(transcript.json())
    assert "about my January claim" in texts
    assert "sure, one moment" in texts
    assert "sure, one moment" not in json.dumps(earlier.json())


def test_handoff_metrics_follow_the_log(server: ApiServer, key: str) -> None:
    conv = start(server)
    cid = conv["conversation_id"]
    with server.client(key) as c:
        before = c.get("/v1/metrics/handoff")
        assert before.status_code == 200, before.text
        offer = {
            "event_id": str(uuid.uuid4()),
            "type": "HandoffOffered",
            "data": {"handoff_id": "h-metrics", "channel": "webrtc"},
        }
        assert c.post(f"/v1/conversations/{cid}/events", json=offer).status_code == 201
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            after = c.get("/v1/metrics/handoff").json()
            if after != before.json():
                break
            time.sleep(0.1)
        assert after != before.json()
        text = c.get("/metrics").text
    assert "threadline_projection_lag" in text
    with server.client(conv["visitor_token"]) as c:
        assert c.get("/v1/metrics/handoff").status_code == 403


def test_stream_sees_appends_from_another_process(
    server: ApiServer, key: str, database_url: str
) -> None:
    """Another writer (here: this test process, through its own Ledger) appends; the server's
    live stream picks it up from the global log (PostgreSQL LISTEN, or the poll on SQLite)."""
    conv = start(server)
    cid = conv["conversation_id"]
    received: list[dict[str, Any]] = []

    def listen() -> None:
        with (
            server.client(conv["visitor_token"]) as c,
            c.stream(
                "GET",
                f"/v1/conversations/{cid}/stream",
                headers={"Last-Event-ID": "2"},
                timeout=20.0,
            ) as r,
        ):
            received.extend(read_sse(r, 1))

    listener = threading.Thread(target=listen)
    listener.start()
    time.sleep(0.5)  # the stream is open and idle before the other process writes
    ledger = open_ledger(database_url)
    try:
        ledger.append(
            cid, NewEvent("MessagePosted", MessagePosted(role="human", text="from elsewhere"))
        )
    finally:
        ledger.close()
    listener.join(timeout=20)
    assert not listener.is_alive()
    assert [e["data"]["text"] for e in received] == ["from elsewhere"]


def test_tenants_learn_nothing_of_each_other(
    server: ApiServer, key: str, other_tenant_key: str
) -> None:
    """Issue 17, class 7: an event-id clash does not name another tenant's conversation (nor
    does a chat message_id clash, reachable anonymously), and `/v1/metrics/handoff` counts
    only the key's own tenant."""
    mine = start(server, key)["conversation_id"]
    with server.client(other_tenant_key) as c:
        theirs = c.post("/v1/conversations", json={"channel": "chat"}).json()
        before = c.get("/v1/metrics/handoff").json()
    event = message("mine")
    with server.client(key) as c:
        assert c.post(f"/v1/conversations/{mine}/events", json=event).status_code == 201
    with server.client(other_tenant_key) as c:
        cid = theirs["conversation_id"]
        clash = c.post(f"/v1/conversations/{cid}/events", json=event)
    assert clash.status_code == 409, clash.text
    assert mine not in clash.text
    visitor = start(server)
    with server.client(visitor["visitor_token"]) as c:
        posted = c.post(
            f"/v1/conversations/{visitor['conversation_id']}/messages",
            json={"text": "hi", "message_id": event["event_id"]},
        )
    assert posted.status_code == 409, posted.text
    assert mine not in posted.text
    # A handoff offered in the first tenant changes nothing in the other's figures.
    offer = {
        "event_id": str(uuid.uuid4()),
        "type": "HandoffOffered",
        "data": {"handoff_id": "h-tenant", "channel": "webrtc"},
    }
    with server.client(key) as c:
        assert c.post(f"/v1/conversations/{mine}/events", json=offer).status_code == 201
        assert c.get("/v1/metrics/handoff").json()["funnel"]["offered"] >= 1
    with server.client(other_tenant_key) as c:
        after = c.get("/v1/metrics/handoff").json()
    assert after["funnel"] == before["funnel"]
    assert after["conversations"] == before["conversations"]


def test_credentials_in_a_query_string_never_reach_the_log(server: ApiServer, key: str) -> None:
    """Issue 17, class 8: refused, and not written to the access log (or any other)."""
    visitor = start(server)["visitor_token"]
    cid = "0" * 32
    with server.client() as c:
        for query in [
            f"api_key={key}",
            f"access_token={visitor}&limit=5",
            f"x=1&token={visitor}",
            f"key={key}",
            f"anything={visitor}",
        ]:
            r = c.get(f"/v1/conversations/{cid}/events?{query}")
            assert r.status_code in {401, 422}, r.text
        assert c.get("/healthz").status_code == 200
    time.sleep(0.2)  # the access line is written after the response
    text = server.log_path.read_text(errors="replace")
    assert "/v1/conversations/" in text  # the access log is on and has these requests
    assert key not in text
    # the secret is the third field (tlk_<id>_<secret>); the secret itself may hold "_"
    assert key.split("_", 2)[2] not in text
    assert visitor not in text
    assert visitor.split(".")[-1] not in text
    assert "[redacted]" in text


AGENT_LINE = {"role": "agent", "text": "a"}


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "body",
    [
        # 900-deep tool arguments (was RecursionError → 500)
        {"type": "ToolCalled", "data": {"call_id": "c1", "name": "t", "arguments": _nested(900)}},
        # a lone surrogate in an argument key (was stored altered)
        {"type": "ToolCalled", "data": {"call_id": "c2", "name": "t", "arguments": {"\ud800": 1}}},
        {"type": "MessagePosted", "data": {"role": "visitor", "text": "x\udfff"}},
        # expected_version must be an integer, not true or "3"
        {"type": "MessagePosted", "data": AGENT_LINE, "expected_version": True},
        {"type": "MessagePosted", "data": AGENT_LINE, "expected_version": "3"},
        {
            "type": "MessagePosted",
            "data": {"role": "agent", "text": "a"},
            "expected_version": 2**64,
        },
    ],
)
def test_hostile_event_bodies_are_4xx_and_append_nothing(
    server: ApiServer, key: str, body: dict[str, Any]
) -> None:
    """Issue 17, class 6: bounded depth, valid Unicode, strict integers; never a 5xx."""
    cid = start(server, key)["conversation_id"]
    before = events_of(server, key, cid)
    payload = json.dumps({"event_id": str(uuid.uuid4()), **body})  # keeps lone surrogates
    with server.client(key) as c:
        r = c.post(
            f"/v1/conversations/{cid}/events",
            content=payload,
            headers={"Content-Type": "application/json"},
        )
    assert r.status_code == 422, r.text
    assert events_of(server, key, cid) == before


@pytest.mark.parametrize("text", ["\u200b\u200c\u200d", "\ufeff \u2060", "\u200e\u200f", "a\ud800"])
def test_invisible_or_invalid_chat_text_is_refused(server: ApiServer, text: str) -> None:
    conv = start(server)
    cid = conv["conversation_id"]
    with server.client(conv["visitor_token"]) as c:
        r = c.post(
            f"/v1/conversations/{cid}/messages",
            content=json.dumps({"text": text}),
            headers={"Content-Type": "application/json"},
        )
    assert r.status_code == 422, r.text
    assert [e["type"] for e in events_of(server, conv["visitor_token"], cid)] == [
        "ConversationStarted",
        "LegOpened",
    ]


@pytest.mark.parametrize("last_event_id", ["9" * 30, str(2**63), "-1", "1e9", "x"])
def test_out_of_range_last_event_id_is_422(server: ApiServer, last_event_id: str) -> None:
    conv = start(server)
    cid = conv["conversation_id"]
    with server.client(conv["visitor_token"]) as c:
        r = c.get(f"/v1/conversations/{cid}/stream", headers={"Last-Event-ID": last_event_id})
    assert r.status_code == 422, r.text
