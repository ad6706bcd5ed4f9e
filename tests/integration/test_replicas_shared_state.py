"""Two `threadline serve` replicas on one PostgreSQL behave as one service (issue 18): an
operator session opened on A works on B and stays inside the operator's tenant there; a
handoff offered through A expires even when A is stopped, exactly once, and exactly once
when both replicas race to close it; failed logins through either spend one budget."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.api_server import ApiServer, create_key
from harness.postgres import PostgresCluster
from tests.integration.test_console_access import PASSWORD, create_operator

pytestmark = pytest.mark.postgres

EXPIRY = {
    "THREADLINE_HANDOFF_OFFER_TTL_S": "5",
    "THREADLINE_HANDOFF_TOKEN_TTL_S": "5",
    "THREADLINE_HANDOFF_EXPIRY_INTERVAL_S": "0.3",
}


# A replica whose own expiry pass would come long after it is stopped.
NEVER_EXPIRES = {"THREADLINE_HANDOFF_EXPIRY_INTERVAL_S": "3600"}


@pytest.fixture
def database_url(postgres_cluster: PostgresCluster) -> str:
    return postgres_cluster.create_database(f"shared_{uuid.uuid4().hex[:12]}")


def _offer_event(handoff_id: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "HandoffOffered",
        "data": {"handoff_id": handoff_id, "channel": "webrtc", "reason": "pricing"},
    }


def _events(server: ApiServer, key: str, cid: str) -> list[dict[str, Any]]:
    with server.client(key) as c:
        r = c.get(f"/v1/conversations/{cid}/events", params={"limit": 1000})
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["events"]
    return events


def _offer(server: ApiServer, key: str, handoff_id: str) -> str:
    with server.client(key) as c:
        r = c.post("/v1/conversations", json={"channel": "chat"})
        assert r.status_code == 201, r.text
        cid: str = r.json()["conversation_id"]
        r = c.post(f"/v1/conversations/{cid}/events", json=_offer_event(handoff_id))
        assert r.status_code == 201, r.text
    return cid


def _wait_expired(server: ApiServer, key: str, cids: list[str], within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        types = [[e["type"] for e in _events(server, key, cid)] for cid in cids]
        if all("HandoffExpired" in t for t in types):
            return
        time.sleep(0.3)
    raise AssertionError(f"not expired within {within_s} s: {types}")


def test_an_offer_made_through_a_stopped_replica_expires_once_on_the_other(
    database_url: str, tmp_path: Path
) -> None:
    key = create_key(database_url, name="adapter")
    a = ApiServer(database_url, tmp_path / "a.log", access_log=True, **(EXPIRY | NEVER_EXPIRES))
    b = ApiServer(database_url, tmp_path / "b.log", access_log=True, **EXPIRY)
    with b:
        with a:
            cid = _offer(a, key, "h-on-a")
        assert a.process is not None
        assert a.process.poll() is not None  # A is gone before the offer's deadline
        _wait_expired(b, key, [cid], within_s=20)
        time.sleep(1.0)  # later passes append nothing more
        types = [e["type"] for e in _events(b, key, cid)]
    assert types.count("HandoffExpired") == 1
    assert types.count("HandoffOffered") == 1


def test_two_replicas_racing_close_each_handoff_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    key = create_key(database_url, name="adapter")
    with (
        ApiServer(database_url, tmp_path / "a.log", access_log=True, **EXPIRY) as a,
        ApiServer(database_url, tmp_path / "b.log", access_log=True, **EXPIRY) as b,
    ):
        cids = [_offer(a if i % 2 else b, key, f"h-{i}") for i in range(6)]
        _wait_expired(a, key, cids, within_s=20)
        time.sleep(1.0)
        counts = [[e["type"] for e in _events(b, key, cid)].count("HandoffExpired") for cid in cids]
    assert counts == [1] * 6


@pytest.fixture
def tenant_replicas(
    database_url: str, tmp_path: Path
) -> Iterator[tuple[ApiServer, ApiServer, dict[str, str]]]:
    for name, tenant in (("ann", "acme"), ("gus", "globex")):
        done = create_operator(database_url, name, PASSWORD, tenant=tenant)
        assert done.returncode == 0, done.stderr
    keys = {t: create_key(database_url, f"adapter-{t}", t) for t in ("acme", "globex")}
    with (
        ApiServer(database_url, tmp_path / "a.log") as a,
        ApiServer(database_url, tmp_path / "b.log") as b,
    ):
        cids = {}
        for tenant, key in keys.items():
            with a.client(key) as c:
                r = c.post("/v1/conversations", json={"channel": "chat"})
                assert r.status_code == 201, r.text
                cids[tenant] = r.json()["conversation_id"]
        yield a, b, cids


def test_an_operator_session_from_a_works_on_b_inside_its_tenant(
    tenant_replicas: tuple[ApiServer, ApiServer, dict[str, str]],
) -> None:
    a, b, cids = tenant_replicas
    with httpx.Client(base_url=a.base_url, timeout=20) as on_a:
        r = on_a.post("/console/api/login", json={"name": "ann", "password": PASSWORD})
        assert r.status_code == 200, r.text
        cookies = dict(on_a.cookies)
    with httpx.Client(base_url=b.base_url, timeout=20, cookies=cookies) as on_b:
        me = on_b.get("/console/api/me")
        assert me.status_code == 200, me.text
        assert me.json() == me.json() | {"operator": "ann", "tenant": "acme"}
        listed = on_b.get("/console/api/conversations").json()
        assert [i["conversation_id"] for i in listed["items"]] == [cids["acme"]]
        own = on_b.get(f"/console/api/conversations/{cids['acme']}/timeline")
        assert own.status_code == 200, own.text
        foreign = on_b.get(f"/console/api/conversations/{cids['globex']}/timeline")
        assert foreign.status_code == 404, foreign.text
        # Logging out on B ends the session on A too (one session table).
        assert on_b.post("/console/api/logout").status_code == 200
    with httpx.Client(base_url=a.base_url, timeout=20, cookies=cookies) as again:
        assert again.get("/console/api/me").status_code == 401


def test_failed_logins_through_either_replica_spend_one_budget(
    tenant_replicas: tuple[ApiServer, ApiServer, dict[str, str]],
) -> None:
    """The login throttle (5 failures per name and per address by default) counts failures
    in the database: alternating replicas, per-process counts would reach only 3 and 2."""
    a, b, _ = tenant_replicas
    codes = []
    for i in range(6):
        with httpx.Client(base_url=(b if i % 2 else a).base_url, timeout=20) as c:
            r = c.post("/console/api/login", json={"name": "gus", "password": "wrong " * 3})
            codes.append(r.status_code)
    assert codes == [401] * 5 + [429], codes
    with httpx.Client(base_url=a.base_url, timeout=20) as c:  # even the right password waits
        r = c.post("/console/api/login", json={"name": "gus", "password": PASSWORD})
    assert r.status_code == 429, r.text
    assert int(r.headers["Retry-After"]) > 0


TWILIO_TOKEN = "replica-auth-token"
PHONE = "+15551230042"


def test_an_sms_to_b_joins_the_conversation_whose_phone_was_verified_through_a(
    database_url: str, tmp_path: Path
) -> None:
    """The phone directory is a fold over the shared global log, caught up on every lookup:
    B links the text to the conversation A recorded the verified number on, at once."""
    from tests.support.fake_provider import fake_provider
    from threadline.channels.messaging.twilio_signature import compute_signature

    key = create_key(database_url, name="adapter")
    with fake_provider(reply={"sid": "SM" + "9" * 32, "status": "queued"}) as api:
        twilio = {
            "THREADLINE_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "THREADLINE_TWILIO_ACCOUNT_SID": "AC1",
            "THREADLINE_TWILIO_SMS_FROM": "+15559990000",
            "THREADLINE_TWILIO_API_BASE_URL": api.base_url,
        }
        with (
            ApiServer(database_url, tmp_path / "a.log", access_log=True, **twilio) as a,
            ApiServer(database_url, tmp_path / "b.log", access_log=True, **twilio) as b,
        ):
            with a.client(key) as c:
                r = c.post("/v1/conversations", json={"channel": "chat"})
                assert r.status_code == 201, r.text
                cid = r.json()["conversation_id"]
                verified = {
                    "event_id": str(uuid.uuid4()),
                    "type": "IdentityVerified",
                    "data": {"method": "kba", "level": 2, "subject": f"tel:{PHONE}"},
                }
                r = c.post(f"/v1/conversations/{cid}/events", json=verified)
                assert r.status_code == 201, r.text
            form = [
                ("MessageSid", "SM" + "4" * 32),
                ("AccountSid", "AC1"),
                ("From", PHONE),
                ("To", "+15559990000"),
                ("Body", "texting you from my phone"),
                ("NumMedia", "0"),
            ]
            url = b.base_url + "/v1/channels/twilio/sms"
            r = httpx.post(
                url,
                data=dict(form),
                headers={"X-Twilio-Signature": compute_signature(TWILIO_TOKEN, url, form)},
                timeout=20,
            )
            assert r.status_code == 200, r.text
            events = _events(a, key, cid)

            # A handoff accepted on A is redeemed on B: the visitor texts B the token.
            with a.client() as c:
                r = c.post("/v1/conversations", json={"channel": "chat"})
                assert r.status_code == 201, r.text
                other, visitor = r.json()["conversation_id"], r.json()["visitor_token"]
            with a.client(visitor) as c:
                r = c.post(f"/v1/conversations/{other}/handoffs", json={"channel": "sms"})
                assert r.status_code == 201, r.text
                token = r.json()["handoff_token"]
            form = [
                ("MessageSid", "SM" + "5" * 32),
                ("AccountSid", "AC1"),
                ("From", "+15551230043"),
                ("To", "+15559990000"),
                ("Body", f"Continue my conversation {token}"),
                ("NumMedia", "0"),
            ]
            r = httpx.post(
                url,
                data=dict(form),
                headers={"X-Twilio-Signature": compute_signature(TWILIO_TOKEN, url, form)},
                timeout=20,
            )
            assert r.status_code == 200, r.text
            redeemed = [e["type"] for e in _events(b, key, other)]
    assert "HandoffAccepted" in redeemed
    assert redeemed.count("HandoffCompleted") == 1
    texts = [e["data"].get("text") for e in events if e["type"] == "MessagePosted"]
    assert "texting you from my phone" in texts
    sms_legs = [e for e in events if e["type"] == "LegOpened" and e["data"]["channel"] == "sms"]
    assert len(sms_legs) == 1


def test_an_operators_live_thread_on_a_ends_when_the_session_is_logged_out_on_b(
    tenant_replicas: tuple[ApiServer, ApiServer, dict[str, str]], database_url: str
) -> None:
    """Logout on B ends the session on A for new requests (above) and for A's open console
    streams too: the live thread carries nothing appended after the logout, and it and the
    queue stream end."""
    import json
    import threading

    a, b, cids = tenant_replicas
    cid = cids["acme"]
    writer = create_key(database_url, "writer-acme", "acme")
    with httpx.Client(base_url=a.base_url, timeout=20) as on_a:
        r = on_a.post("/console/api/login", json={"name": "ann", "password": PASSWORD})
        assert r.status_code == 200, r.text
        cookies = dict(on_a.cookies)
    texts: list[str] = []
    opened, ended = threading.Event(), threading.Event()

    def listen() -> None:
        with (
            httpx.Client(base_url=a.base_url, timeout=20, cookies=cookies) as c,
            c.stream("GET", f"/console/api/conversations/{cid}/live") as r,
        ):
            assert r.status_code == 200, r.read()
            opened.set()
            for line in r.iter_lines():  # returns when the server ends the stream
                item = json.loads(line[5:]) if line.startswith("data:") else {}
                if item.get("type") == "MessagePosted":
                    texts.append(item["data"]["text"])
        ended.set()

    def post(text: str) -> None:
        event = {
            "event_id": str(uuid.uuid4()),
            "type": "MessagePosted",
            "data": {"role": "visitor", "text": text},
        }
        with b.client(writer) as c:
            assert c.post(f"/v1/conversations/{cid}/events", json=event).status_code == 201

    queue_opened, queue_ended = threading.Event(), threading.Event()

    def watch_queue() -> None:
        with (
            httpx.Client(base_url=a.base_url, timeout=20, cookies=cookies) as c,
            c.stream("GET", "/console/api/queue/stream") as r,
        ):
            assert r.status_code == 200, r.read()
            queue_opened.set()
            for _ in r.iter_lines():
                pass
        queue_ended.set()

    listener = threading.Thread(target=listen)
    listener.start()
    queue_watcher = threading.Thread(target=watch_queue)
    queue_watcher.start()
    assert opened.wait(10)
    assert queue_opened.wait(10)
    post("before the logout")
    deadline = time.monotonic() + 5
    while "before the logout" not in texts and time.monotonic() < deadline:
        time.sleep(0.05)
    with httpx.Client(base_url=b.base_url, timeout=20, cookies=cookies) as on_b:
        assert on_b.post("/console/api/logout").status_code == 200
    time.sleep(1.0)
    post("after the logout")
    assert ended.wait(8), "the live thread is still open"
    assert queue_ended.wait(8), "the queue stream is still open"
    listener.join(timeout=5)
    queue_watcher.join(timeout=5)
    assert texts == ["before the logout"], texts


ERASED_PHONE = "+15551230077"


def _sms(server: ApiServer, number: str, sid: str, body: str) -> None:
    from threadline.channels.messaging.twilio_signature import compute_signature

    form = [
        ("MessageSid", sid),
        ("AccountSid", "AC1"),
        ("From", number),
        ("To", "+15559990000"),
        ("Body", body),
        ("NumMedia", "0"),
    ]
    url = server.base_url + "/v1/channels/twilio/sms"
    r = httpx.post(
        url,
        data=dict(form),
        headers={"X-Twilio-Signature": compute_signature(TWILIO_TOKEN, url, form)},
        timeout=20,
    )
    assert r.status_code == 200, r.text


def test_an_erasure_through_a_holds_on_b_within_a_second_and_in_its_phone_directory(
    database_url: str, tmp_path: Path
) -> None:
    """B has the conversation's data key cached and its phone linked (an SMS joined it)
    when the subject is erased through A. Within a second B serves no plaintext of it, and
    B's phone directory forgets the erased number as a replica started after the erasure
    would (its fold reads `[erased]`): a later text from the number starts a new
    conversation instead of joining the erased one, on B and on a new replica C alike."""
    import secrets

    from tests.support.fake_provider import fake_provider

    secret_text = f"my secret claim detail {secrets.token_hex(4)}"
    adapter = create_key(database_url, name="adapter")
    officer = create_key(database_url, name="officer", scopes=("data-subjects",))
    with fake_provider(reply={"sid": "SM" + "9" * 32, "status": "queued"}) as api:
        env = {
            "THREADLINE_MASTER_KEY": secrets.token_urlsafe(32),
            "THREADLINE_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "THREADLINE_TWILIO_ACCOUNT_SID": "AC1",
            "THREADLINE_TWILIO_SMS_FROM": "+15559990000",
            "THREADLINE_TWILIO_API_BASE_URL": api.base_url,
        }
        with (
            ApiServer(database_url, tmp_path / "a.log", **env) as a,
            ApiServer(database_url, tmp_path / "b.log", **env) as b,
        ):
            with a.client(adapter) as c:
                r = c.post("/v1/conversations", json={"channel": "chat"})
                assert r.status_code == 201, r.text
                cid = r.json()["conversation_id"]
                for data in (
                    {"method": "kba", "level": 2, "subject": f"tel:{ERASED_PHONE}"},
                    {"role": "visitor", "text": secret_text},
                ):
                    event = {
                        "event_id": str(uuid.uuid4()),
                        "type": "IdentityVerified" if "method" in data else "MessagePosted",
                        "data": data,
                    }
                    r = c.post(f"/v1/conversations/{cid}/events", json=event)
                    assert r.status_code == 201, r.text
            _sms(b, ERASED_PHONE, "SM" + "6" * 32, "texting before the erasure")
            with b.client(adapter) as on_b:
                page = on_b.get(f"/v1/conversations/{cid}/events", params={"limit": 1000})
                assert secret_text in page.text  # B holds the data key now
                assert "texting before the erasure" in page.text  # and links the number

                with a.client(officer) as on_a:
                    r = on_a.post("/v1/data-subjects/erase", json={"subject": ERASED_PHONE})
                assert r.status_code == 200, r.text
                assert r.json()["erased"] == [cid], r.json()
                erased_at = time.monotonic()
                while True:
                    page = on_b.get(f"/v1/conversations/{cid}/events", params={"limit": 1000})
                    assert page.status_code == 200, page.text
                    if secret_text not in page.text:
                        break
                    assert time.monotonic() - erased_at < 1.0, "B served plaintext 1 s on"
                    time.sleep(0.05)
                print(
                    "B stopped serving plaintext, s after the erasure:",
                    time.monotonic() - erased_at,
                )
                assert "texting before the erasure" not in page.text
                version = len(page.json()["events"])

                _sms(b, ERASED_PHONE, "SM" + "7" * 32, "texting B after the erasure")
                with ApiServer(database_url, tmp_path / "c.log", **env) as c_replica:
                    _sms(c_replica, ERASED_PHONE, "SM" + "8" * 32, "texting C after the erasure")
                after = on_b.get(f"/v1/conversations/{cid}/events", params={"limit": 1000})
    assert len(after.json()["events"]) == version, after.json()["events"][version:]
