"""Crash safety: SIGKILL the server while 20 clients append; after a restart every event whose
append was acknowledged (2xx) is present exactly once, and every chain verifies."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from harness.api_server import ApiServer, create_key
from threadline.ledger.audit import verify_all
from threadline.ledger.store import open_ledger

CLIENTS = 20


class Client(threading.Thread):
    def __init__(self, base_url: str, key: str, conversation_id: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.base_url, self.key, self.cid, self.stop = base_url, key, conversation_id, stop
        self.acked: list[str] = []
        self.unknown: list[str] = []  # sent, but no answer: may or may not be stored

    def run(self) -> None:
        with httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.key}"}, timeout=5.0
        ) as c:
            while not self.stop.is_set():
                event_id = str(uuid.uuid4())
                body = {
                    "event_id": event_id,
                    "type": "MessagePosted",
                    "data": {"role": "visitor", "text": f"crash test {event_id}"},
                }
                try:
                    r = c.post(f"/v1/conversations/{self.cid}/events", json=body)
                except httpx.TransportError:
                    self.unknown.append(event_id)
                    return
                assert r.status_code in (200, 201), r.text
                self.acked.append(event_id)


def run_crash(database_url: str, log: Path) -> None:
    key = create_key(database_url, name="crash")
    server = ApiServer(database_url, log, access_log=False).start()
    try:
        with server.client(key) as c:
            cids = [
                c.post("/v1/conversations", json={}).json()["conversation_id"]
                for _ in range(CLIENTS // 2)
            ]
        stop = threading.Event()
        # Two clients per conversation, so appends also race on the same stream.
        clients = [Client(server.base_url, key, cids[i % len(cids)], stop) for i in range(CLIENTS)]
        for client in clients:
            client.start()
        deadline = time.monotonic() + 20
        while sum(len(c.acked) for c in clients) < 400 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill()
        stop.set()
        for client in clients:
            client.join(timeout=10)
        acked = [e for c in clients for e in c.acked]
        unknown = {e for c in clients for e in c.unknown}
        assert len(acked) >= 100, "the server was killed before clients got going"

        server.start()
        with server.client(key) as c:
            stored: Counter[str] = Counter()
            for cid in cids:
                page = c.get(f"/v1/conversations/{cid}/events", params={"limit": 1000}).json()
                assert [e["position"] for e in page["events"]] == list(
                    range(1, len(page["events"]) + 1)
                )
                stored.update(e["event_id"] for e in page["events"] if e["type"] == "MessagePosted")
            missing = [e for e in acked if stored[e] != 1]
            assert missing == [], f"{len(missing)} acknowledged events lost or duplicated"
            assert set(stored) <= set(acked) | unknown
            # Retrying an in-doubt append is safe: stored ones answer 200, lost ones 201.
            for client in clients:
                for event_id in client.unknown:
                    body = {
                        "event_id": event_id,
                        "type": "MessagePosted",
                        "data": {"role": "visitor", "text": f"crash test {event_id}"},
                    }
                    r = c.post(f"/v1/conversations/{client.cid}/events", json=body)
                    assert r.status_code == (200 if stored[event_id] else 201), r.text
    finally:
        server.stop()
    ledger = open_ledger(database_url)
    try:
        result = verify_all(ledger)  # raises IntegrityViolationError on a broken chain
        assert result.events >= 2 * len(cids) + len(acked)
    finally:
        ledger.close()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_sigkill_during_appends_loses_no_acknowledged_event(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'crash.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    run_crash(url, tmp_path / "server.log")
