"""Two `threadline serve` replicas on one PostgreSQL and the Kafka-protocol broker (Tansu),
with one `threadline relay` beside each replica as a deployment would run them (issue 18):
appends made through both replicas, interleaved within each conversation, reach the topic
exactly once and in each conversation's order, in one partition per conversation, with no
personal text in any record's bytes. Only one relay publishes at a time (the checkpoint's
advisory lock); when the leader is killed the standby carries on from the checkpoint."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest

from harness.api_server import ROOT, ApiServer, create_key, free_port, server_env
from harness.postgres import PostgresCluster
from harness.streaming import read_topic, wait_for
from tests.support.ledgers import open_configured
from threadline.ledger.envelope import RecordedEvent
from threadline.streaming.checkpoint import open_checkpoint
from threadline.streaming.sealed import StreamDecoder

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(240)]

CONVERSATIONS = 6
MESSAGES = 6  # per conversation and phase, alternating replicas


def _post(server: ApiServer, key: str, cid: str, text: str) -> None:
    event = {
        "event_id": str(uuid.uuid4()),
        "type": "MessagePosted",
        "data": {"role": "visitor", "text": text},
    }
    with server.client(key) as c:
        r = c.post(f"/v1/conversations/{cid}/events", json=event)
    assert r.status_code == 201, r.text


def _everything(url: str) -> list[RecordedEvent]:
    with open_configured(url) as ledger:
        out: list[RecordedEvent] = []
        while batch := ledger.read_all(after=out[-1].sequence if out else 0, limit=5000):
            out += batch
        return out


def test_appends_through_both_replicas_reach_the_topic_once_in_order_across_a_relay_failover(
    postgres_cluster: PostgresCluster,
    kafka_bootstrap: str,
    kafka_topic: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = postgres_cluster.create_database(f"stream_{uuid.uuid4().hex[:12]}")
    master = secrets.token_urlsafe(32)
    monkeypatch.setenv("THREADLINE_MASTER_KEY", master)  # this process decodes the records
    tag = secrets.token_hex(6)
    key = create_key(url, name="adapter")
    relay_env = server_env(
        url,
        THREADLINE_MASTER_KEY=master,
        THREADLINE_KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        THREADLINE_KAFKA_TOPIC=kafka_topic,
        THREADLINE_KAFKA_PARTITIONS="4",
        THREADLINE_RELAY_BATCH_SIZE="20",
    )
    open_checkpoint(url).close()  # creates the table polled below
    relays: list[subprocess.Popen[bytes]] = []

    ports: dict[str, int] = {}

    def start_relay(name: str) -> subprocess.Popen[bytes]:
        ports[name] = free_port()
        log = (tmp_path / f"relay-{name}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "threadline.app.cli", "relay"],
            cwd=ROOT,
            env=relay_env | {"THREADLINE_RELAY_METRICS_PORT": str(ports[name])},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        relays.append(proc)
        return proc

    def leads(name: str) -> int | None:
        """The relay's own answer (its metrics endpoint): 1 leading, 0 standing by."""
        try:
            text = httpx.get(f"http://127.0.0.1:{ports[name]}/metrics", timeout=2).text
        except httpx.TransportError:
            return None
        for line in text.splitlines():
            if line.startswith("threadline_relay_leader{"):
                return int(float(line.split()[-1]))
        return None

    def published() -> int:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT position FROM relay_checkpoints WHERE name = 'relay'"
            ).fetchone()
        return int(row[0]) if row else 0

    try:
        with (
            ApiServer(url, tmp_path / "a.log", THREADLINE_MASTER_KEY=master) as a,
            ApiServer(url, tmp_path / "b.log", THREADLINE_MASTER_KEY=master) as b,
        ):
            replicas = (a, b)
            cids = []
            for i in range(CONVERSATIONS):
                with replicas[i % 2].client(key) as c:
                    r = c.post("/v1/conversations", json={"channel": "chat"})
                assert r.status_code == 201, r.text
                cids.append(r.json()["conversation_id"])

            def phase(n: int) -> int:
                for m in range(MESSAGES):
                    for i, cid in enumerate(cids):
                        _post(replicas[(i + m) % 2], key, cid, f"secret {tag} {n}.{m}")
                return len(_everything(url))

            leader = start_relay("a")
            total = phase(1)
            wait_for(lambda: published() >= total, 60, "the first relay to publish phase 1")
            assert leads("a") == 1
            standby = start_relay("b")
            wait_for(lambda: leads("b") == 0, 60, "the second relay to stand by")
            assert leads("a") == 1  # still one leader
            leader.send_signal(signal.SIGKILL)  # its session, and so its lock, goes
            leader.wait(10)
            total = phase(2)
            wait_for(lambda: published() >= total, 60, "the standby to take over")
            assert leads("b") == 1
            assert standby.poll() is None, (tmp_path / "relay-b.log").read_text()
    finally:
        for proc in relays:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    truth = _everything(url)
    records = read_topic(kafka_bootstrap, kafka_topic, len(truth))
    for r in records:  # neither texts nor anything else in clear
        assert tag.encode() not in r.value + r.key + b"".join(v for _, v in r.headers)
    with open_configured(url) as consumer_side:
        decode = StreamDecoder(consumer_side.codec)
        seen = [decode(r.value) for r in records]
    counts = Counter(e.event_id for e in seen)
    assert set(counts) == {e.event_id for e in truth}
    assert max(counts.values()) == 1  # the leader was idle when killed: nothing unacked
    partitions: dict[str, set[int]] = {}
    positions: dict[str, list[int]] = {}
    for r, e in zip(records, seen, strict=True):
        assert r.key == e.conversation_id.encode()
        partitions.setdefault(e.conversation_id, set()).add(r.partition)
        positions.setdefault(e.conversation_id, []).append(e.position)
    assert set(positions) == set(cids)
    assert all(len(p) == 1 for p in partitions.values())
    expected = {cid: [e.position for e in truth if e.conversation_id == cid] for cid in cids}
    assert positions == expected  # each conversation in its order
    texts = [e.data.text for e in seen if e.type == "MessagePosted"]  # type: ignore[attr-defined]
    assert sorted(texts) == sorted(
        f"secret {tag} {n}.{m}" for n in (1, 2) for m in range(MESSAGES) for _ in cids
    )
