"""The append route's fast path (`channels/http/fast_append.py`) answers exactly as the FastAPI
route does, against a real server on SQLite.

A `Content-Type: application/json; charset=utf-8` request is valid for FastAPI but handed on
by the fast path unread, so the same request sent both ways compares the two answers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.api_server import ApiServer, create_key

FAST = "application/json"
ROUTE = "application/json; charset=utf-8"  # handed on to the FastAPI route


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('fast') / 'threadline.db'}"


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    log: Path = tmp_path_factory.mktemp("log") / "server.log"
    with ApiServer(database_url, log) as srv:
        yield srv


@pytest.fixture(scope="module")
def key(database_url: str) -> str:
    return create_key(database_url, name="adapter")


@pytest.fixture(scope="module")
def other_key(database_url: str) -> str:
    return create_key(database_url, name="elsewhere", tenant="acme")


def start(server: ApiServer, key: str) -> dict[str, Any]:
    with server.client(key) as c:
        r = c.post("/v1/conversations", json={"channel": "chat"})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def post(
    server: ApiServer, token: str | None, cid: str, body: Any, content_type: str
) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with server.client() as c:
        return c.post(f"/v1/conversations/{cid}/events", content=raw, headers=headers)


def count(server: ApiServer, key: str, cid: str) -> int:
    with server.client(key) as c:
        r = c.get(f"/v1/conversations/{cid}/events", params={"limit": 1000})
    assert r.status_code == 200, r.text
    return len(r.json()["events"])


def message(**extra: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "MessagePosted",
        "data": {"role": "visitor", "text": "hello"},
        **extra,
    }


def same(a: httpx.Response, b: httpx.Response) -> None:
    assert a.status_code == b.status_code, (a.text, b.text)
    assert a.content == b.content
    for header in ("content-type", "content-length", "www-authenticate", "retry-after"):
        assert a.headers.get(header) == b.headers.get(header), header


def test_success_and_duplicate_answer_byte_for_byte_as_the_route(
    server: ApiServer, key: str
) -> None:
    cid = start(server, key)["conversation_id"]
    event = message()
    first = post(server, key, cid, event, FAST)
    assert first.status_code == 201, first.text
    assert set(first.json()) == {"event_id", "position", "sequence", "duplicate"}
    assert first.json()["position"] == 3
    assert first.json()["duplicate"] is False
    # The repeat (idempotent: 200, the original position) through both paths.
    fast, route = post(server, key, cid, event, FAST), post(server, key, cid, event, ROUTE)
    assert fast.status_code == 200
    assert fast.json()["duplicate"] is True
    same(fast, route)
    assert fast.json()["position"] == first.json()["position"]
    # A fresh event through the route gets the same shape the fast path gave.
    other = post(server, key, cid, message(), ROUTE)
    assert other.status_code == 201
    assert list(other.json()) == list(first.json())
    assert count(server, key, cid) == 4


def test_every_rejection_is_the_routes_and_appends_nothing(
    server: ApiServer, key: str, other_key: str
) -> None:
    conv = start(server, key)
    cid = conv["conversation_id"]
    taken = message()
    assert post(server, key, cid, taken, FAST).status_code == 201
    cases: list[tuple[str, str | None, str, Any, int]] = [
        ("no credentials", None, cid, message(), 401),
        ("wrong key", "tlk_0000000000000000_" + "A" * 43, cid, message(), 401),
        ("visitor token", conv["visitor_token"], cid, message(), 403),
        ("other tenant", other_key, cid, message(), 404),
        ("no such conversation", key, "nosuch", message(), 404),
        ("bad path", key, "bad.id", message(), 422),
        ("unknown type", key, cid, {**message(), "type": "NoSuchEvent"}, 422),
        ("bad data", key, cid, {**message(), "data": {"role": "visitor"}}, 422),
        ("extra field", key, cid, {**message(), "surprise": 1}, 422),
        ("bad uuid", key, cid, {**message(), "event_id": "nope"}, 422),
        ("not an object", key, cid, [message()], 422),
        ("bad json", key, cid, b'{"event_id": ', 422),
        ("version conflict", key, cid, message(expected_version=1), 409),
        ("string version", key, cid, message(expected_version="3"), 422),
        ("event id reused", key, cid, {**taken, "data": {"role": "agent", "text": "x"}}, 409),
    ]
    for name, token, target, body, status in cases:
        headers_token = token
        fast = post(server, headers_token, target, body, FAST)
        route = post(server, headers_token, target, body, ROUTE)
        assert fast.status_code == status, (name, fast.text)
        assert fast.headers["content-type"] == "application/json", name
        assert "error" in fast.json(), name
        same(fast, route)
    with server.client() as c:
        for scheme in ("Basic abc", "Bearer", "bearer  x  y"):
            raw = json.dumps(message()).encode()
            h = {"Content-Type": FAST, "Authorization": scheme}
            fast = c.post(f"/v1/conversations/{cid}/events", content=raw, headers=h)
            h["Content-Type"] = ROUTE
            route = c.post(f"/v1/conversations/{cid}/events", content=raw, headers=h)
            assert fast.status_code == 401, scheme
            same(fast, route)
    assert count(server, key, cid) == 3


def test_fast_appends_are_counted_under_the_route_template(server: ApiServer, key: str) -> None:
    cid = start(server, key)["conversation_id"]
    assert post(server, key, cid, message(), FAST).status_code == 201
    with server.client() as c:
        metrics = c.get("/metrics").text
    lines = [
        line
        for line in metrics.splitlines()
        if "/v1/conversations/{conversation_id}/events" in line
    ]
    assert any('method="POST"' in line and '"201"' in line for line in lines), lines


def test_the_fast_path_is_first_in_the_router() -> None:
    """Without it the tests above would still pass (they compare it with the route)."""
    import os

    from threadline.access.keys import MemoryKeyStore
    from threadline.access.tokens import VisitorTokens
    from threadline.channels.http.app import create_app
    from threadline.channels.http.fast_append import FastAppendRoute
    from threadline.channels.services import Services
    from threadline.channels.settings import ChannelSettings
    from threadline.ledger.store import open_ledger

    services = Services(
        settings=ChannelSettings(),
        ledger=open_ledger("memory://"),
        keys=MemoryKeyStore(),
        tokens=VisitorTokens(os.urandom(32), 3600),
    )
    try:
        route = create_app(services).router.routes[0]
        assert isinstance(route, FastAppendRoute)
        assert route.path == "/v1/conversations/{conversation_id}/events"
    finally:
        services.close()
