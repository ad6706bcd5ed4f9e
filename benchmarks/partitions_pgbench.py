"""The partitioned log's database side under pgbench (a C client), run by
`python -m benchmarks.ledger --partitions 1,2,4 --levels pgbench [--pgbench-variants ...]`.

On a 2-core machine the Python writers of the other levels eat the cores the server needs
(their wait profile is mostly `client`), so what the partitions do for the *database* is
hidden behind the client. Here 16 pgbench clients (`-c 16 -j 2`) run the recorder's own
statements against the schema the recorder creates (`open_recorder(datastore, N)`), each
client appending one real sealed `MessagePosted` payload (a ledger with privacy on wrote
it: personal fields encrypted, the stored bytes as production stores them) to its own
conversation per transaction, fsync on. The clients' conversations are spread evenly over
the partitions (table `bench_clients`: client → conversation id, its partition, payload),
as in benchmarks/partitions.py.

Variants (`--pgbench-variants`, default `built`), each at every partition count (1 partition
has one code path, `threadline_insert_events`: LOCK TABLE with NOTIFY inside, measured once
per mode and round and shared by the variants):
- `built`: exactly what the recorder sends today for a single-conversation append with
  N > 1: `threadline_insert_one_partition`, then `NOTIFY` as a statement of its own after
  the commit (`PartitionedPostgresRecorder.insert_events`).
- `general`: the general multi-partition function `threadline_insert_partitioned`
  (`FOR UPDATE` on the touched head rows, grouping CTEs; what every append used before the
  one-partition function), then `NOTIFY`.
- `async-notify`: `built`, the wake-up sent through `threadline_notify()`, which commits with
  `synchronous_commit = off` (the NOTIFY transaction needs no durability of its own: the
  events it announces are already durable).
- `no-notify`: `built` without any wake-up (an upper bound: live streams would poll).
- `scalar`: a benchmark-only insert function for exactly one event (scalar arguments, plain
  `INSERT … VALUES`, no arrays or CTEs), then `NOTIFY`: how much a cheaper function could
  still give.
`-M simple` and `-M prepared` (`--pgbench-modes`) are both measured; ratios are to
1 partition in the same variant and mode, in the same alternating rounds.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import SecretStr

from benchmarks.pg_waits import WaitSampler
from threadline.ledger.envelope import NewEvent
from threadline.ledger.partitions import partition_of
from threadline.ledger.settings import LedgerSettings
from threadline.ledger.store import open_ledger

TEXT = "I'd like to change the delivery address on my order, it is 4711-22 from last week."
VARIANTS = ("built", "general", "async-notify", "no-notify", "scalar")
NOTIFY_FUNCTION = "threadline_notify"
SCALAR_FUNCTION = "bench_insert_one_event"


def sealed_payload(url: str) -> bytes:
    """A MessagePosted as the ledger stores it with privacy on (text sealed)."""
    settings = LedgerSettings(
        database_url=url, privacy="on", master_key=SecretStr(secrets.token_urlsafe(32))
    )
    with open_ledger(settings=settings, group_commit=False) as ledger:
        ledger.append("payload", NewEvent("ConversationStarted", {"channel": "chat"}))
        ledger.append(
            "payload",
            NewEvent("MessagePosted", {"role": "visitor", "text": TEXT}, leg_id="l", actor="b"),
        )
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT state FROM stored_events WHERE originator_id = 'payload' "
            "AND originator_version = 2"
        ).fetchone()
    assert row is not None
    state = bytes(row[0])
    assert TEXT.encode() not in state  # really sealed
    return state


def prepare(url: str, partitions: int, writers: int, state: bytes) -> dict[str, str]:
    """The recorder's schema, the clients' table and the variants' helper functions;
    returns the names the scripts need."""
    from threadline.ledger.partitions_postgres import open_recorder
    from threadline.ledger.postgres import datastore_from_url

    datastore = datastore_from_url(url, LedgerSettings(postgres_pool_size=2))
    try:
        recorder = open_recorder(datastore, partitions)
        names = {
            "type": recorder.stored_event_type_name,
            "channel": recorder.channel_name,
        }
    finally:
        datastore.close()
    cids: list[str] = []
    k = 0
    while len(cids) < writers:
        cid = f"bench-{k}"
        k += 1
        if partition_of(cid, partitions) == len(cids) % partitions:
            cids.append(cid)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_clients (client int PRIMARY KEY, cid text NOT NULL, "
            "part int NOT NULL, state bytea NOT NULL)"
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO bench_clients VALUES (%s, %s, %s, %s)",
                [(i, cid, partition_of(cid, partitions), state) for i, cid in enumerate(cids)],
            )
        conn.execute(
            f"CREATE OR REPLACE FUNCTION {NOTIFY_FUNCTION}(channel text) RETURNS void "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "PERFORM set_config('synchronous_commit', 'off', true); "
            "PERFORM pg_notify(channel, ''); END; $$"
        )
        if partitions > 1:
            conn.execute(
                f"CREATE OR REPLACE FUNCTION {SCALAR_FUNCTION}(cid text, pos bigint, "
                "topic text, st bytea, eid uuid, digest text, part int) RETURNS bigint "
                "LANGUAGE plpgsql AS $$ DECLARE s bigint; nid bigint; BEGIN "
                "UPDATE threadline_log_heads SET head = head + 1 WHERE partition = part "
                "RETURNING head INTO s; "
                "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
                "VALUES (cid, pos, topic, st) RETURNING notification_id INTO nid; "
                "INSERT INTO threadline_event_ids VALUES (eid, cid, pos, nid, digest); "
                "INSERT INTO threadline_log_partitions VALUES (part, s, nid); "
                "RETURN nid; END; $$"
            )
    return names


def script(variant: str, partitions: int, names: dict[str, str]) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    row = f"ARRAY[ROW(c.cid, :pos, 'MessagePosted', c.state)::{names['type']}]"
    lines = ["\\set pos :pos + 1"]
    if partitions == 1:
        lines.append(
            f"SELECT s FROM bench_clients c, threadline_insert_events({row}, "
            "ARRAY[gen_random_uuid()], ARRAY['bench']) s WHERE c.client = :client_id;"
        )
        return "\n".join(lines) + "\n"
    if variant == "scalar":
        lines.append(
            f"SELECT {SCALAR_FUNCTION}(c.cid, :pos, 'MessagePosted', c.state, "
            "gen_random_uuid(), 'bench', c.part) FROM bench_clients c "
            "WHERE c.client = :client_id;"
        )
    elif variant == "general":
        lines.append(
            f"SELECT s FROM bench_clients c, threadline_insert_partitioned({row}, "
            "ARRAY[gen_random_uuid()], ARRAY['bench'], ARRAY[c.part]) s "
            "WHERE c.client = :client_id;"
        )
    else:
        lines.append(
            f"SELECT s FROM bench_clients c, threadline_insert_one_partition({row}, "
            "ARRAY[gen_random_uuid()], ARRAY['bench'], c.part) s WHERE c.client = :client_id;"
        )
    if variant in ("built", "general", "scalar"):
        lines.append(f"NOTIFY {names['channel']};")
    elif variant == "async-notify":
        lines.append(f"SELECT {NOTIFY_FUNCTION}('{names['channel']}');")
    return "\n".join(lines) + "\n"


def pgbench(
    url: str, script_text: str, clients: int, seconds: float, mode: str, threads: int = 2
) -> float:
    """Transactions (script runs, i.e. appends) per second, initial connections excluded."""
    exe = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    info = conninfo_to_dict(url)
    env = {**os.environ, "PGPASSWORD": str(info.get("password", ""))}
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script_text)
        path = f.name
    try:
        done = subprocess.run(
            [
                exe,
                "-n",
                "-c",
                str(clients),
                "-j",
                str(threads),
                "-T",
                str(max(1, round(seconds))),
                "-M",
                mode,
                "-D",
                "pos=0",
                "-f",
                path,
                "-h",
                str(info["host"]),
                "-p",
                str(info["port"]),
                "-U",
                str(info["user"]),
                str(info["dbname"]),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            check=False,
        )
    finally:
        Path(path).unlink()
    found = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", done.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
    if done.returncode != 0 or found is None or (failed and int(failed.group(1))):
        raise RuntimeError(f"pgbench failed: {done.stdout[-1500:]} {done.stderr[-1500:]}")
    return float(found.group(1))


def run(
    make_url: Any,
    counts: list[int],
    writers: int = 16,
    seconds: float = 8.0,
    rounds: int = 3,
    variants: list[str] | None = None,
    modes: list[str] | None = None,
    waits: bool = False,
) -> None:
    from benchmarks.partitions import merged
    from benchmarks.report import Figure, emit

    variants = variants or ["built"]
    modes = modes or ["simple", "prepared"]
    state = sealed_payload(make_url("pgbench_payload"))
    print(
        f"\n[postgres] partitioned log, pgbench level: {writers} clients (-j 2), one sealed "
        f"MessagePosted ({len(state)} bytes) per transaction, fsync on, {seconds:g} s each; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    keys = [(v, m, n) for v in variants for m in modes for n in counts]
    samples: dict[tuple[str, str, int], list[float]] = {k: [] for k in keys}
    sampled: dict[tuple[str, str, int], list[WaitSampler]] = {k: [] for k in keys}
    loads: list[float] = []
    for r in range(rounds):
        # Alternate everything within a round: machine drift hits every configuration.
        for variant, mode, n in keys:
            if n == 1 and variant != variants[0]:
                # 1 partition has one code path: measured once per mode and round, shared.
                continue
            url = make_url(f"pgb_{variant.replace('-', '_')}_{mode}_{n}_{r}")
            names = prepare(url, n, writers, state)
            text = script(variant, n, names)
            loads.append(os.getloadavg()[0])
            if waits:
                with WaitSampler(url) as sampler:
                    tps = pgbench(url, text, writers, seconds, mode)
                sampled[variant, mode, n].append(sampler)
            else:
                tps = pgbench(url, text, writers, seconds, mode)
            samples[variant, mode, n].append(tps)
    for variant, mode, n in keys:
        if n == 1 and variant != variants[0]:
            samples[variant, mode, n] = samples[variants[0], mode, 1]
            sampled[variant, mode, n] = sampled[variants[0], mode, 1]
    print(f"  load average during the rounds: {min(loads):.1f} to {max(loads):.1f}")
    for variant in variants:
        for mode in modes:
            print(f"  {variant}, -M {mode}:")
            rates = {n: sum(samples[variant, mode, n]) / rounds for n in counts}
            base = rates.get(1)
            for n in counts:
                ratio = f"   {rates[n] / base:5.2f}x 1 partition" if base else ""
                each = " ".join(f"{x:.0f}" for x in samples[variant, mode, n])
                print(f"    {n} partition(s) {rates[n]:8.0f} appends/s{ratio}   (rounds: {each})")
                if waits and sampled[variant, mode, n]:
                    print(f"      {merged(sampled[variant, mode, n])}")
            for n in counts:
                if n > 1 and base:
                    emit(
                        Figure(
                            f"pgbench {variant} -M {mode}, {writers} clients, {n} partitions",
                            rates[n],
                            "appends/s",
                            baseline=base,
                            baseline_name="1 partition",
                            goal_min=2.5 * base if n == 4 else None,
                        )
                    )
    print(f"  load average after: {os.getloadavg()[0]:.1f}")
