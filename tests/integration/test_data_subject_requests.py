"""Issue 17, class 9 (c, d) on a real server: the data-subject routes (export and erase)
are authenticated, limited to API keys with the `data-subjects` scope and to the key's
tenant, recorded as events, idempotent, and a rejected request appends nothing; an erasure
made by another process (the CLI) stops the running server serving plaintext within a
second."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from harness.api_server import ROOT, ApiServer, create_key, server_env
from threadline.ledger.envelope import NewEvent
from threadline.ledger.store import Ledger, open_ledger

PHONE = f"+1555{secrets.randbelow(10**7):07d}"
SECRET_TEXT = f"my claim secret {secrets.token_hex(4)}"


def _chat(ledger: Ledger, cid: str, tenant: str, phone: str, text: str) -> None:
    ledger.append_batch(
        cid,
        [
            NewEvent(
                "ConversationStarted",
                {"channel": "sms", "visitor_ref": f"tel:{phone}", "tenant": tenant},
            ),
            NewEvent("MessagePosted", {"role": "visitor", "text": text}),
        ],
    )


def _key_id(key: str) -> str:
    return key.split("_")[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    base = tmp_path_factory.mktemp("dsr")
    url = f"sqlite:///{base / 'threadline.db'}"
    with open_ledger(url) as ledger:
        _chat(ledger, "c-ours", "default", PHONE, SECRET_TEXT)
        _chat(ledger, "c-theirs", "acme", PHONE, SECRET_TEXT)
        _chat(ledger, "c-cli", "default", "+15550000001", SECRET_TEXT)
    officer = create_key(url, name="privacy-officer", scopes=("data-subjects",))
    adapter = create_key(url, name="adapter")
    with ApiServer(url, base / "server.log") as server:
        yield {"url": url, "server": server, "officer": officer, "adapter": adapter}


def _versions(url: str) -> dict[str, int]:
    with open_ledger(url) as ledger:
        return {c: ledger.version(c) for c in ("c-ours", "c-theirs", "c-cli")}


def _texts(url: str, cid: str) -> str:
    with open_ledger(url) as ledger:
        return json.dumps([e.to_json() for e in ledger.read(cid)], default=str)


@pytest.mark.parametrize(
    ("who", "body", "status"),
    [
        (None, {"subject": PHONE}, 401),
        ("adapter", {"subject": PHONE}, 403),
        ("officer", {}, 422),
        ("officer", {"subject": PHONE, "extra": 1}, 422),
        ("officer", {"subject": " " + PHONE}, 422),
    ],
)
@pytest.mark.parametrize("route", ["export", "erase"])
def test_a_rejected_request_is_json_and_appends_nothing(
    setup: dict[str, object], who: str | None, body: dict[str, object], status: int, route: str
) -> None:
    server = setup["server"]
    assert isinstance(server, ApiServer)
    url = str(setup["url"])
    before = _versions(url)
    headers = {"Authorization": f"Bearer {setup[who]}"} if who else {}
    with server.client() as c:
        response = c.post(f"/v1/data-subjects/{route}", json=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "error" in response.json()
    assert _versions(url) == before


def test_export_then_erase_in_the_keys_tenant_only_recorded_and_idempotent(
    setup: dict[str, object],
) -> None:
    server = setup["server"]
    assert isinstance(server, ApiServer)
    url = str(setup["url"])
    auth = {"Authorization": f"Bearer {setup['officer']}"}
    with server.client() as c:
        exported = c.post("/v1/data-subjects/export", json={"subject": PHONE}, headers=auth)
        assert exported.status_code == 200, exported.text
        doc = exported.json()
        assert [x["conversation_id"] for x in doc["conversations"]] == ["c-ours"]
        assert SECRET_TEXT in json.dumps(doc)
        assert "c-theirs" not in exported.text  # another tenant's: not named
        with open_ledger(url) as ledger:
            assert ledger.read("c-ours")[-1].type == "SubjectExportRequested"
        before = _versions(url)

        erased = c.post(
            "/v1/data-subjects/erase", json={"subject": PHONE, "reason": "T-1"}, headers=auth
        )
        assert erased.status_code == 200, erased.text
        assert (erased.json()["erased"], erased.json()["already_erased"]) == (["c-ours"], [])
        after = _versions(url)
        assert after["c-ours"] == before["c-ours"] + 1
        assert after["c-theirs"] == before["c-theirs"]
        with open_ledger(url) as ledger:
            last = ledger.read("c-ours")[-1]
            assert (last.type, last.actor) == (
                "SubjectErased",
                f"key:{_key_id(str(setup['officer']))}",
            )
        assert SECRET_TEXT not in _texts(url, "c-ours")
        assert SECRET_TEXT in _texts(url, "c-theirs")

        again = c.post("/v1/data-subjects/erase", json={"subject": PHONE}, headers=auth)
        assert again.status_code == 200
        assert (again.json()["erased"], again.json()["already_erased"]) == ([], ["c-ours"])
        assert _versions(url) == after


def test_the_server_stops_serving_plaintext_within_a_second_of_a_cli_erasure(
    setup: dict[str, object],
) -> None:
    server = setup["server"]
    assert isinstance(server, ApiServer)
    url = str(setup["url"])
    auth = {"Authorization": f"Bearer {setup['adapter']}"}
    with server.client() as c:
        first = c.get("/v1/conversations/c-cli/events", headers=auth)
        assert first.status_code == 200, first.text
        assert SECRET_TEXT in first.text  # the server holds the key in its cache now
        done = subprocess.run(
            [sys.executable, "-m", "threadline.app.cli", "erase", "+15550000001"],
            cwd=ROOT,
            env=server_env(url),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        erased_at = time.monotonic()
        while SECRET_TEXT in c.get("/v1/conversations/c-cli/events", headers=auth).text:
            assert time.monotonic() - erased_at < 1.0, "plaintext served 1 s after erasure"
            time.sleep(0.05)
