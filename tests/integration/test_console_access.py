"""Who gets into the console, checked on a real server (the full app, uvicorn on loopback):
every console route and data endpoint, anonymous, with a visitor token, with an API key,
with forged or ended sessions, and with an operator session."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute

from harness.api_server import OPERATOR_PASSWORD as PASSWORD
from harness.api_server import ROOT, ApiServer, create_key, server_env
from tests.support import console_seed
from threadline.channels.console import routes, takeover
from threadline.ledger.store import open_ledger
from threadline.projections.context import build_context
from threadline.projections.identity import build_identity
from threadline.projections.transcript import build_transcript

CID = "conv-chat-voice-chat"


def create_operator(
    database_url: str, name: str, password: str, tenant: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Through the real CLI, as an administrator would."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "threadline.app.commands.operators",
            "operators",
            "create",
            name,
            "--password-stdin",
            *(["--tenant", tenant] if tenant is not None else []),
        ],
        input=password + "\n",
        cwd=ROOT,
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('console-access') / 'threadline.db'}"
    ledger = open_ledger(url)
    try:
        console_seed.population(ledger)
    finally:
        ledger.close()
    done = create_operator(url, "ops", PASSWORD)
    assert done.returncode == 0, done.stderr
    return url


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with ApiServer(database_url, tmp_path_factory.mktemp("log") / "server.log") as srv:
        yield srv


@pytest.fixture(scope="module")
def visitor_token(server: ApiServer) -> str:
    with server.client() as c:
        response = c.post("/v1/conversations", json={"channel": "chat"})
    assert response.status_code == 201, response.text
    token: str = response.json()["visitor_token"]
    return token


@pytest.fixture(scope="module")
def api_key(database_url: str) -> str:
    return create_key(database_url, name="adapter")


@contextmanager
def login(server: ApiServer, name: str = "ops", password: str = PASSWORD) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        response = client.post("/console/api/login", json={"name": name, "password": password})
        assert response.status_code == 200, response.text
        yield client


@pytest.fixture(scope="module")
def operator(server: ApiServer) -> Iterator[httpx.Client]:
    with login(server) as client:
        yield client


def console_requests() -> list[tuple[str, str]]:
    """(method, URL) for every console route, read from the router itself so that a route
    added later is covered without editing this test."""
    out = []
    for route in [*routes.router.routes, *takeover.router.routes]:
        assert isinstance(route, APIRoute)
        for method in sorted(route.methods):
            if (method, route.path) == ("POST", "/console/api/login"):
                continue  # the one public endpoint: tested below
            path = route.path.replace("{conversation_id}", CID)
            if "{path:path}" in path:
                for asset in ("console.js", "conversation.js", "vendor/uplot/uPlot.iife.min.js"):
                    out.append((method, path.replace("{path:path}", asset)))
                continue
            if path.endswith("/as-of"):
                path += "?position=3"
            out.append((method, path))
    return out


REQUESTS = console_requests()
TAKEOVER_PATHS = {
    r.path.replace("{conversation_id}", CID)
    for r in takeover.router.routes
    if isinstance(r, APIRoute) and ("POST" in r.methods or r.path.endswith(("stream", "live")))
}
IDS = [f"{m} {p}" for m, p in REQUESTS]


def test_every_kind_of_route_is_covered() -> None:
    paths = {p.split("?")[0] for _, p in REQUESTS}
    for expected in (
        "/console",
        f"/console/conversations/{CID}",
        "/console/dashboard",
        "/console/api/conversations",
        f"/console/api/conversations/{CID}/timeline",
        f"/console/api/conversations/{CID}/verify",
        f"/console/api/conversations/{CID}/as-of",
        f"/console/api/conversations/{CID}/audit.jsonl",
        "/console/api/metrics",
        "/console/api/metrics.csv",
        "/console/api/me",
        "/console/api/logout",
        "/console/static/console.js",
    ):
        assert expected in paths


@pytest.mark.parametrize(("method", "path"), REQUESTS, ids=IDS)
def test_anonymous_gets_401(server: ApiServer, method: str, path: str) -> None:
    with server.client() as c:
        response = c.request(method, path)
    assert response.status_code == 401
    assert "Threadline" not in response.headers.get("set-cookie", "")
    if response.headers["content-type"].startswith("application/json"):
        assert response.json()["error"] == "unauthenticated"
    else:  # pages answer with the login form, not with the page
        assert 'id="login-form"' in response.text
        assert "conv-" not in response.text


@pytest.mark.parametrize(("method", "path"), REQUESTS, ids=IDS)
def test_visitor_token_gets_403(
    server: ApiServer, visitor_token: str, method: str, path: str
) -> None:
    with server.client(visitor_token) as c:
        assert c.request(method, path).status_code == 403
    with server.client() as c:  # the token as a query parameter does not open it either
        sep = "&" if "?" in path else "?"
        assert c.request(method, f"{path}{sep}token={visitor_token}").status_code == 403


@pytest.mark.parametrize(("method", "path"), REQUESTS, ids=IDS)
def test_api_key_gets_403(server: ApiServer, api_key: str, method: str, path: str) -> None:
    with server.client(api_key) as c:
        response = c.request(method, path)
    assert response.status_code == 403
    assert "conv-" not in response.text


@pytest.mark.parametrize(
    "cookie", ["", "garbage", "x" * 4000, "v1.eyJjIjoiY29udi1jaGF0LXZvaWNlLWNoYXQifQ.sig"]
)
def test_forged_session_cookies_get_401(server: ApiServer, cookie: str) -> None:
    for method, path in REQUESTS:
        with httpx.Client(base_url=server.base_url, cookies={"threadline_console": cookie}) as c:
            assert c.request(method, path).status_code == 401, (method, path)


@pytest.mark.parametrize(("method", "path"), REQUESTS, ids=IDS)
def test_operator_gets_in(operator: httpx.Client, method: str, path: str) -> None:
    if path == "/console/api/logout":
        return  # ends the shared session: covered by test_logout_ends_the_session
    if path in TAKEOVER_PATHS:
        return  # writes and live streams: tests/integration/test_console_takeover.py
    response = operator.request(method, path)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"


def test_login_cookie_is_httponly_strict_and_scoped(server: ApiServer) -> None:
    with httpx.Client(base_url=server.base_url) as c:
        response = c.post("/console/api/login", json={"name": "ops", "password": PASSWORD})
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/console" in cookie
    assert PASSWORD.lower() not in cookie


def test_console_cookie_does_not_open_the_api(server: ApiServer, operator: httpx.Client) -> None:
    response = operator.get(f"/v1/conversations/{CID}/events")
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "ops", "password": "wrong password here"}, 401),
        ({"name": "nobody", "password": PASSWORD}, 401),
        ({"name": "ops"}, 422),
        ({"name": "", "password": PASSWORD}, 422),
    ],
)
def test_bad_logins_are_refused(server: ApiServer, body: dict[str, str], status: int) -> None:
    with httpx.Client(base_url=server.base_url) as c:
        response = c.post("/console/api/login", json=body)
        assert response.status_code == status
        assert "set-cookie" not in response.headers
        assert c.get("/console/api/me").status_code == 401


def test_failed_logins_are_stored_as_keyed_digests(server: ApiServer, database_url: str) -> None:
    """The served app keys the shared login-failure table with the configured secret: an
    unkeyed hash of a client address could be reversed by hashing every address."""
    import sqlite3

    from harness.api_server import TEST_SECRET
    from threadline.channels.console.operators_sql import failure_digest
    from threadline.ledger.aead import derive

    with httpx.Client(base_url=server.base_url) as c:
        response = c.post("/console/api/login", json={"name": "ops", "password": "not it at all"})
    assert response.status_code == 401
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
        keys = {row[0] for row in db.execute("SELECT key FROM console_login_failures")}
    secret = derive(TEST_SECRET.encode("utf-8"), "threadline/login-failures")
    assert failure_digest("name:ops", secret) in keys
    assert failure_digest("name:ops") not in keys
    assert all(key.startswith("hmac:") for key in keys)


def test_login_refuses_form_posts_and_other_origins(server: ApiServer) -> None:
    with httpx.Client(base_url=server.base_url) as c:
        form = c.post("/console/api/login", data={"name": "ops", "password": PASSWORD})
        assert form.status_code == 422
        cross = c.post(
            "/console/api/login",
            json={"name": "ops", "password": PASSWORD},
            headers={"Origin": "http://evil.example"},
        )
        assert cross.status_code == 403
        assert "set-cookie" not in cross.headers


def test_logout_ends_the_session(server: ApiServer) -> None:
    with login(server) as client:
        cookie = client.cookies["threadline_console"]
        assert client.get("/console/api/me").json()["operator"] == "ops"
        assert client.post("/console/api/logout").status_code == 200
    with httpx.Client(base_url=server.base_url, cookies={"threadline_console": cookie}) as stale:
        assert stale.get("/console/api/me").status_code == 401


def test_cli_refuses_bad_operators_with_one_line(database_url: str) -> None:
    for name, password, message in [
        ("ops", PASSWORD, "already exists"),
        ("Bad Name", PASSWORD, "operator name"),
        ("newbie", "short", "at least 12"),
    ]:
        done = create_operator(database_url, name, password)
        assert done.returncode != 0
        assert message in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_operator_store_keeps_no_password(database_url: str) -> None:
    raw = Path(database_url.removeprefix("sqlite:///")).read_bytes()
    assert PASSWORD.encode() not in raw
    assert b"$argon2id$" in raw


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/console/api/conversations/nope/timeline", 404),
        ("/console/api/conversations/nope/verify", 404),
        ("/console/api/conversations/nope/as-of?position=1", 404),
        ("/console/api/conversations/nope/audit.jsonl", 404),
        (f"/console/api/conversations/{CID}/as-of?position=0", 422),
        (f"/console/api/conversations/{CID}/as-of?position=x", 422),
        (f"/console/api/conversations/{CID}/as-of", 422),
        ("/console/api/conversations?status=maybe", 422),
        ("/console/api/conversations?limit=100000", 422),
        ("/console/api/conversations?date_from=yesterday", 422),
        ("/console/api/conversations/" + "x" * 300 + "/timeline", 422),
        ("/console/static/../routes.py", 404),
        ("/console/static/%2e%2e/routes.py", 404),
        ("/console/static/login.html", 404),
    ],
)
def test_bad_requests_are_clear_json_errors(
    operator: httpx.Client, database_url: str, path: str, status: int
) -> None:
    ledger = open_ledger(database_url)
    before = ledger.max_sequence()
    response = operator.get(path)
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["detail"], str | list)
    assert ledger.max_sequence() == before  # the console never appends
    ledger.close()


@pytest.mark.parametrize("position", [4, 12, 22])
def test_as_of_is_the_projections_at_that_position(
    operator: httpx.Client, database_url: str, position: int
) -> None:
    """The same folds as `threadline replay --as ... --upto N`, compared whole."""
    body = operator.get(
        f"/console/api/conversations/{CID}/as-of", params={"position": position, "mask": "false"}
    ).json()
    ledger = open_ledger(database_url)
    events = ledger.read(CID, upto=position)
    ledger.close()
    assert body["position"] == position
    expected = {
        "transcript": build_transcript(events).model_dump(mode="json"),
        "identity": build_identity(events).model_dump(mode="json"),
        "context": build_context(events).model_dump(mode="json"),
    }
    assert body["projections"] == json.loads(json.dumps(expected))
    assert body["projections"]["identity"]["level"] == (0 if position < 5 else 2)
    masked = operator.get(
        f"/console/api/conversations/{CID}/as-of", params={"position": position}
    ).text
    assert "alice@example.com" not in masked
