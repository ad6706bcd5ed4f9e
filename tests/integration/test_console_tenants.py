"""Two tenants, two operators, on the real server (SQLite): every console route, read from
the routers themselves, is checked for leakage. An operator sees only their tenant's
conversations, queue, figures and streams; another tenant's conversation id answers 404
(not 403, which would confirm the id exists) and nothing is appended for it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi.routing import APIRoute

from harness.api_server import ApiServer, create_key
from tests.integration.test_console_access import PASSWORD, create_operator
from threadline.channels.console import routes, takeover

TENANTS = {"acme": "ann", "globex": "gus"}

# Every console route and how it is checked; a new route fails the completeness test until
# it is classified here.
PER_CONVERSATION = {
    ("GET", "/console/api/conversations/{conversation_id}/timeline"),
    ("GET", "/console/api/conversations/{conversation_id}/verify"),
    ("GET", "/console/api/conversations/{conversation_id}/as-of"),
    ("GET", "/console/api/conversations/{conversation_id}/audit.jsonl"),
    ("GET", "/console/api/conversations/{conversation_id}/holder"),
    ("GET", "/console/api/conversations/{conversation_id}/live"),
    ("POST", "/console/api/conversations/{conversation_id}/join"),
    ("POST", "/console/api/conversations/{conversation_id}/messages"),
    ("POST", "/console/api/conversations/{conversation_id}/leave"),
    ("POST", "/console/api/conversations/{conversation_id}/call"),
    ("DELETE", "/console/api/conversations/{conversation_id}/call"),
    ("POST", "/console/api/conversations/{conversation_id}/call-visitor"),
}
LISTS = {
    ("GET", "/console/api/conversations"),
    ("GET", "/console/api/queue"),
    ("GET", "/console/api/metrics"),
    ("GET", "/console/api/metrics/human"),
    ("GET", "/console/api/metrics.csv"),
    ("GET", "/console/api/me"),
}
STREAMS = {("GET", "/console/api/queue/stream")}
# Carry no conversation data: the login form, session, pages (static shells) and assets.
NO_DATA = {
    ("POST", "/console/api/login"),
    ("POST", "/console/api/logout"),
    ("POST", "/console/api/presence"),
    ("GET", "/console"),
    ("GET", "/console/"),
    ("GET", "/console/conversations/{conversation_id}"),
    ("GET", "/console/dashboard"),
    ("GET", "/console/static/{path:path}"),
}


def _routes() -> set[tuple[str, str]]:
    found = set()
    for router in (routes.router, takeover.router):
        for route in router.routes:
            assert isinstance(route, APIRoute)
            found |= {(m, route.path) for m in route.methods or ()}
    return found


def test_every_console_route_is_checked() -> None:
    assert _routes() == PER_CONVERSATION | LISTS | STREAMS | NO_DATA


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, dict[str, str]]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('tenants') / 'threadline.db'}"
    for tenant, name in TENANTS.items():
        done = create_operator(url, name, PASSWORD, tenant=tenant)
        assert done.returncode == 0, done.stderr
    keys = {tenant: create_key(url, f"adapter-{tenant}", tenant) for tenant in TENANTS}
    with ApiServer(url, tmp_path_factory.mktemp("log") / "server.log") as srv:
        cids = {}
        with httpx.Client(base_url=srv.base_url, timeout=30) as client:
            for tenant, key in keys.items():
                r = client.post(
                    "/v1/conversations",
                    json={"channel": "chat"},
                    headers={"Authorization": f"Bearer {key}"},
                )
                assert r.status_code == 201, r.text
                cid, token = r.json()["conversation_id"], r.json()["visitor_token"]
                r = client.post(
                    f"/v1/conversations/{cid}/messages",
                    json={"text": f"Can I speak to a person please? I am {tenant}-visitor"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert r.status_code == 201, r.text
                cids[tenant] = cid
        yield srv, cids


@contextmanager
def operator(server: ApiServer, name: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=20) as client:
        r = client.post("/console/api/login", json={"name": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        yield client


def _url(path: str, cid: str) -> str:
    url = path.replace("{conversation_id}", cid)
    return url + ("?position=1" if url.endswith("/as-of") else "")


def _body(method: str, path: str) -> dict[str, object] | None:
    if path.endswith("/messages"):
        return {"text": "hello"}
    if path.endswith("/call") and method == "POST":
        return {"sdp": "v=0", "type": "offer"}
    return None


@pytest.mark.parametrize("tenant", sorted(TENANTS))
def test_another_tenants_conversation_does_not_exist(
    world: tuple[ApiServer, dict[str, str]], tenant: str
) -> None:
    server, cids = world
    other = next(t for t in TENANTS if t != tenant)
    with operator(server, TENANTS[tenant]) as client:
        for method, path in sorted(PER_CONVERSATION):
            before = client.get(
                _url("/console/api/conversations/{conversation_id}/timeline", cids[other])
            )
            r = client.request(method, _url(path, cids[other]), json=_body(method, path))
            assert r.status_code == 404, (method, path, r.status_code, r.text)
            assert r.json()["error"] == "not_found"
            assert cids[other] not in r.text.replace(repr(cids[other]), "")
            assert before.status_code == 404
        # The same routes answer for the operator's own conversation (so the 404 is the
        # tenant check, not a broken route).
        for path in ("timeline", "verify", "holder", "audit.jsonl"):
            r = client.get(f"/console/api/conversations/{cids[tenant]}/{path}")
            assert r.status_code == 200, (path, r.text)
        r = client.get(f"/console/api/conversations/{cids[tenant]}/as-of?position=1")
        assert r.status_code == 200, r.text
        with client.stream("GET", f"/console/api/conversations/{cids[tenant]}/live") as live:
            assert live.status_code == 200


def test_no_write_lands_in_another_tenant(world: tuple[ApiServer, dict[str, str]]) -> None:
    server, cids = world
    with operator(server, "gus") as gus:
        before = gus.get(f"/console/api/conversations/{cids['globex']}/timeline").json()
    with operator(server, "ann") as ann:
        for step in ("join", "messages", "leave"):
            body = {"text": "hi"} if step == "messages" else None
            r = ann.post(f"/console/api/conversations/{cids['globex']}/{step}", json=body)
            assert r.status_code == 404, r.text
    with operator(server, "gus") as gus:
        after = gus.get(f"/console/api/conversations/{cids['globex']}/timeline").json()
    assert after == before


@pytest.mark.parametrize("tenant", sorted(TENANTS))
def test_lists_figures_and_exports_show_one_tenant(
    world: tuple[ApiServer, dict[str, str]], tenant: str
) -> None:
    server, cids = world
    other = next(t for t in TENANTS if t != tenant)
    with operator(server, TENANTS[tenant]) as client:
        listed = client.get("/console/api/conversations").json()
        assert [i["conversation_id"] for i in listed["items"]] == [cids[tenant]]
        assert listed["total"] == 1
        assert listed["per_channel"]["chat"] == 1
        queue = client.get("/console/api/queue").json()
        assert [i["conversation_id"] for i in queue["items"]] == [cids[tenant]]
        figures = client.get("/console/api/metrics").json()
        assert figures["overall"]["conversations"] == 1
        human = client.get("/console/api/metrics/human").json()
        assert human["requests"] == 1, human
        csv = client.get("/console/api/metrics.csv").text
        assert re.search(r"^all,", csv, re.M)
        me = client.get("/console/api/me").json()
        assert me["tenant"] == tenant
        for method, path in sorted(LISTS):
            text = client.request(method, path).text
            assert cids[other] not in text, path
            assert f"{other}-visitor" not in text, path
        with client.stream("GET", "/console/api/queue/stream") as stream:
            assert stream.status_code == 200
            seen = ""
            for chunk in stream.iter_text():
                seen += chunk
                if "event: queue" in seen and seen.endswith("\n\n"):
                    break
        assert cids[tenant] in seen
        assert cids[other] not in seen
