"""Incremental checkpoints (ledger/checkpoint.py, audit.survey_since): after the first, a
checkpoint reads only the conversations with log entries after the previous one (from their
checkpointed head on) and one head row of each other checkpointed conversation, carrying the
rest forward. Every detection stays: the writer still refuses to sign over a cut, deleted or
rewritten head, touched or not, and `audit verify --all` (which surveys everything) still
names a break the writer did not read. On SQLite and PostgreSQL, by real byte tampering.

Layout after `_fill`: c1 at global sequences 1-4, c2 at 5-6, c3 at 7-8."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.integration.test_ledger_checkpoint import (
    Execute,
    _rewrite_consistently,
    _truncate_consistently,
    tamperable,
)
from tests.support.ledgers import message, open_configured, started
from threadline.app.cli import build
from threadline.app.settings import load_settings
from threadline.ledger import audit, canonical, checkpoint
from threadline.ledger.checkpoint_schedule import CheckpointSchedule, SoleWriter
from threadline.ledger.envelope import NewEvent
from threadline.ledger.recorders import HeadsReader
from threadline.ledger.settings import LedgerSettings
from threadline.ledger.store import open_ledger

SCHEDULE_LOG = "threadline.ledger.checkpoint_schedule"
__all__ = ["tamperable"]  # the fixture, shared with the non-incremental tests


def _checkpoint() -> tuple[int, str, str]:
    done = CliRunner().invoke(build(), ["audit", "checkpoint"])
    return done.exit_code, done.stdout, done.stderr


def _verify() -> tuple[int, list[str]]:
    done = CliRunner().invoke(build(), ["audit", "verify", "--all"])
    return done.exit_code, [s for s in done.stderr.splitlines() if s.startswith("broken:")]


def _paths(url: str) -> checkpoint.CheckpointPaths:
    return checkpoint.configured_paths(url, load_settings().ledger)  # as the CLI does


def test_an_incremental_checkpoint_reads_only_what_is_new_and_equals_a_full_one(
    tamperable: tuple[str, Execute],
) -> None:
    url, _ = tamperable
    with open_configured(url) as store:
        for n in range(20):
            store.append_batch(f"more-{n:02}", [started(), message("a"), message("b")])
        first, _ = checkpoint.write_checkpoint(store, _paths(url))
        store.append("c1", message("four"))
        store.append_batch("more-07", [message("c"), message("d")])
        store.append_batch("new", [started(), message("hello")])
        second, report = checkpoint.write_checkpoint(store, _paths(url))
        full = audit.survey_all(store)
    assert first.number == 1
    assert second.number == 2
    # What a whole survey finds, heads and global position alike.
    assert second.heads == full.heads
    assert second.global_sequence == full.last_sequence
    assert report.broken == ()
    # Read: c1 from its head (4) to 5, more-07 from 3 to 5, `new` (2), and one head row of
    # each of the 21 others; a whole survey reads all 73 events.
    assert report.events == 2 + 3 + 2 + 21
    assert full.events == 73
    code, broken = _verify()
    assert (code, broken) == (0, [])


def test_an_untouched_head_cut_rewritten_or_deleted_is_not_signed_over(
    tamperable: tuple[str, Execute],
) -> None:
    url, execute = tamperable
    assert _checkpoint()[0] == 0
    with open_configured(url) as store:
        store.append("c3", message("later"))  # the log advanced; c1 and c2 are untouched
    _rewrite_consistently(execute)
    code, _, err = _checkpoint()
    assert code == 1
    assert "not signing over it: conversation c2: position 2: rewritten" in err
    _truncate_consistently(execute)
    code, _, err = _checkpoint()
    assert code == 1
    assert "not signing over it: conversation c1: truncated" in err
    code, broken = _verify()
    assert code == 1
    assert broken == [
        "broken: conversation c1: truncated: head at position 3, checkpoint 1 recorded position 4",
        "broken: conversation c2: position 2: rewritten: its hash differs from checkpoint 1",
    ]


def test_a_deleted_conversation_or_a_cut_global_log_is_not_signed_over(
    tamperable: tuple[str, Execute],
) -> None:
    _, execute = tamperable
    assert _checkpoint()[0] == 0
    execute("DELETE FROM stored_events WHERE originator_id='c3'", ())
    execute("DELETE FROM threadline_event_ids WHERE conversation_id='c3'", ())
    code, _, err = _checkpoint()
    assert code == 1
    assert "not signing over it: conversation c3: missing" in err
    assert "(2 problem(s);" in err  # and the global log below the checkpoint's sequence


def test_a_touched_conversation_cut_below_its_checkpointed_head_is_not_signed_over(
    tamperable: tuple[str, Execute],
) -> None:
    """The checkpointed head (c1 at 4) deleted with its id, the newer events kept: the
    events after the checkpoint still chain to the checkpointed hash, so only reading the
    head itself shows the cut."""
    url, execute = tamperable
    assert _checkpoint()[0] == 0
    with open_configured(url) as store:
        store.append_batch("c1", [message("five"), message("six")])
    _truncate_consistently(execute, "c1", 4)
    code, _, err = _checkpoint()
    assert code == 1
    assert "not signing over it: conversation c1: truncated: head at position 3" in err
    code, broken = _verify()
    assert code == 1
    assert (
        "broken: conversation c1: truncated: head at position 3, checkpoint 1 recorded "
        in (broken[-1])
    )


def test_a_cut_and_regrown_conversation_is_not_signed_over(
    tamperable: tuple[str, Execute],
) -> None:
    """c1's head cut, then the ledger appends at that position again: a new record where the
    checkpoint holds another."""
    url, execute = tamperable
    assert _checkpoint()[0] == 0
    _truncate_consistently(execute, "c1", 4)
    with open_configured(url) as store:
        store.append_batch("c1", [message("not three"), message("more")])
    code, _, err = _checkpoint()
    assert code == 1
    assert "not signing over it: conversation c1: position 4: rewritten" in err


def test_a_break_below_an_untouched_head_is_still_named_by_verify(
    tamperable: tuple[str, Execute],
) -> None:
    """c1's record at 2 replaced, hash recomputed (its successor no longer chains to it): the
    incremental writer does not read below c1's head and signs; its carried-forward head
    hides nothing, and `audit verify --all` names the break."""
    url, execute = tamperable
    assert _checkpoint()[0] == 0
    ((state,),) = execute(
        "SELECT state FROM stored_events WHERE originator_id='c1' AND originator_version=2", ()
    )
    body = canonical.loads(bytes(state))
    body["data"] = {**body["data"], "text": "forged"}
    del body["hash"]
    body["hash"] = canonical.sha256_hex(canonical.dumps(body))
    execute(
        "UPDATE stored_events SET state=%s WHERE originator_id='c1' AND originator_version=2",
        (canonical.dumps(body),),
    )
    with open_configured(url) as store:
        store.append("c3", message("later"))
    code, out, _ = _checkpoint()
    assert code == 0, out
    (_, second) = checkpoint.read_log(_paths(url).log_file)
    (first, _) = checkpoint.read_log(_paths(url).log_file)
    assert second.heads["c1"] == first.heads["c1"]
    code, broken = _verify()
    assert code == 1
    assert broken[0].startswith("broken: conversation c1: position 3: prev_hash does not match")
    assert broken[1] == (
        "broken: conversation c1: truncated: head at position 2, checkpoint 2 recorded position 4"
    )


def _forge_below_c1s_head(execute: Execute) -> None:
    """c1's record at 2 replaced with its own hash recomputed: only a read from position 1
    sees that position 3 no longer chains to it."""
    ((state,),) = execute(
        "SELECT state FROM stored_events WHERE originator_id='c1' AND originator_version=2", ()
    )
    body = canonical.loads(bytes(state))
    body["data"] = {**body["data"], "text": "forged"}
    del body["hash"]
    body["hash"] = canonical.sha256_hex(canonical.dumps(body))
    execute(
        "UPDATE stored_events SET state=%s WHERE originator_id='c1' AND originator_version=2",
        (canonical.dumps(body),),
    )


def test_a_full_checkpoint_refuses_a_break_below_an_untouched_head(
    tamperable: tuple[str, Execute],
) -> None:
    """`audit checkpoint --full` reads every conversation from position 1: the break the
    incremental writer does not look for stops it from signing."""
    url, execute = tamperable
    assert _checkpoint()[0] == 0
    _forge_below_c1s_head(execute)
    with open_configured(url) as store:
        store.append("c3", message("later"))
    assert _checkpoint()[0] == 0  # incremental: c1's head row is intact, so it signs
    with open_configured(url) as store:
        store.append("c3", message("later still"))
    full = CliRunner().invoke(build(), ["audit", "checkpoint", "--full"])
    assert full.exit_code != 0
    assert "not signing over it: conversation c1: " in full.stderr
    assert len(checkpoint.read_log(_paths(url).log_file)) == 2  # nothing signed by --full


def test_the_servers_first_checkpoint_after_a_start_is_full(
    tamperable: tuple[str, Execute], caplog: pytest.LogCaptureFixture
) -> None:
    """A running server's later runs are incremental and do not look below c1's quiet head;
    the first run after a restart surveys everything and refuses to sign over the break."""
    url, execute = tamperable
    assert _checkpoint()[0] == 0
    paths = _paths(url)
    with open_configured(url) as store, caplog.at_level(logging.INFO, SCHEDULE_LOG):
        running = CheckpointSchedule(store, paths, SoleWriter())
        store.append("c3", message("a"))
        running.run()  # its first write: full, nothing wrong yet
        _forge_below_c1s_head(execute)
        store.append("c3", message("b"))
        running.run()  # incremental: signs
        assert running.written == 2
        restarted = CheckpointSchedule(store, paths, SoleWriter())
        store.append("c3", message("c"))
        restarted.run()
        assert restarted.written == 0
    lines = [r.getMessage() for r in caplog.records if r.name == SCHEDULE_LOG]
    assert len(lines) == 3, lines
    assert "broken" not in lines[0] + lines[1]
    assert lines[2].startswith("signed checkpoint not written: CheckpointError: ")
    assert "not signing over it: conversation c1: " in lines[2]
    assert len(checkpoint.read_log(paths.log_file)) == 3


def test_a_conversation_broken_after_a_checkpoint_keeps_its_checkpointed_head(
    tamperable: tuple[str, Execute],
) -> None:
    """A record appended after checkpoint 1 is damaged: checkpoint 2 does not sign its new
    head but keeps c2's checkpointed one, so a later cut below it is still named."""
    url, execute = tamperable
    assert _checkpoint()[0] == 0
    with open_configured(url) as store:
        store.append_batch("c2", [message("three"), message("four")])
    execute(
        "UPDATE stored_events SET state=%s WHERE originator_id='c2' AND originator_version=4",
        (b'{"not": "an envelope"}',),
    )
    code, _, err = _checkpoint()
    assert code == 0
    assert "not checkpointed: conversation c2: position 4: stored bytes differ" in err
    (first, second) = checkpoint.read_log(_paths(url).log_file)
    assert second.heads["c2"] == first.heads["c2"] == (2, first.heads["c2"][1])
    execute("DELETE FROM stored_events WHERE originator_id='c2' AND originator_version>=2", ())
    code, broken = _verify()
    assert code == 1
    assert (
        "broken: conversation c2: truncated: head at position 1, checkpoint 2 recorded position 2"
        in broken
    )


@pytest.mark.parametrize("full", [False, True])
def test_full_and_incremental_agree_on_a_growing_ledger(
    tamperable: tuple[str, Execute], full: bool
) -> None:
    url, _ = tamperable
    with open_configured(url) as store:
        for round_ in range(3):
            store.append_batch(f"r{round_}", [started(), message("x")])
            store.append("c1", message(f"round {round_}"))
            signed, report = checkpoint.write_checkpoint(store, _paths(url), full=full)
            assert report.broken == ()
            assert signed.heads == audit.survey_all(store).heads


def test_a_partitioned_log_is_surveyed_whole(tmp_path: Path) -> None:
    """Sequences commit out of order across partitions, so "after the checkpoint" is not a
    safe cut there: every checkpoint reads every event."""
    url = f"sqlite:///{tmp_path / 'p.db'}"
    settings = LedgerSettings(database_url=url, log_partitions=4, privacy="off")
    paths = checkpoint.CheckpointPaths(tmp_path / "cp.key", tmp_path / "cp.jsonl")
    with open_ledger(settings=settings) as store:
        for n in range(8):
            store.append_batch(f"p{n}", [started(), message("x")])
        checkpoint.write_checkpoint(store, paths)
        store.append("p3", message("y"))
        signed, report = checkpoint.write_checkpoint(store, paths)
    assert report.events == 17
    assert signed.heads["p3"][0] == 3


@pytest.mark.parametrize(
    "backend",
    [
        "memory",
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("postgres-partitioned", marks=pytest.mark.postgres),
    ],
)
def test_select_heads_reads_each_newest_record_in_batches(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    """Every backend the checkpoint writer runs on reads heads in batches (`HeadsReader`):
    across statement boundaries, a missing id left out, each row as `select_conversation`
    returns it (its global sequence included)."""
    partitions = 3 if backend == "postgres-partitioned" else 1
    if backend.startswith("postgres"):
        url = request.getfixturevalue("fresh_postgres_url")
    else:
        url = "memory://" if backend == "memory" else f"sqlite:///{tmp_path / 'h.db'}"
    settings = LedgerSettings(database_url=url, privacy="off", log_partitions=partitions)
    with open_ledger(url, settings=settings) as store:
        for n in range(2203):  # more than two statements' worth on SQLite and PostgreSQL
            store.append_batch(f"h{n}", [started(), *(message("x") for _ in range(n % 3))])
        ids = [f"h{n}" for n in range(2203)] + ["never-started"]
        assert isinstance(store.recorder, HeadsReader)
        heads = store.recorder.select_heads(ids)
        sample = {
            c: store.recorder.select_conversation(c, desc=True, limit=1)[0] for c in ids[::97]
        }
    assert set(heads) == set(ids) - {"never-started"}
    assert {c: r.originator_version for c, r in heads.items()} == {
        f"h{n}": 1 + n % 3 for n in range(2203)
    }
    assert {c: heads[c] for c in sample} == sample


@pytest.mark.parametrize("privacy", ["off", "on"])
def test_an_untouched_head_is_recognised_without_parsing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, privacy: str
) -> None:
    """The fast path (`audit._unchanged`) holds for every record the ledger writes, sealed
    personal fields included, and for no other hash."""
    monkeypatch.setenv("THREADLINE_PRIVACY", privacy)
    url = f"sqlite:///{tmp_path / 'f.db'}"
    with open_configured(url) as store:
        first = NewEvent("ConversationStarted", {"channel": "sms", "visitor_ref": "+3161234"})
        store.append_batch("f", [first, message("x")])
        store.append("f", message("y", leg_id="leg-1", actor="operator:ann"))
        report = audit.survey_all(store)
        rows = store.recorder.select_conversation("f")
    assert report.broken == ()
    digests = [json_hash(r.state) for r in rows]
    assert [audit._unchanged(r, d) for r, d in zip(rows, digests, strict=True)] == [True] * 3
    assert not audit._unchanged(rows[2], digests[1])
    assert report.heads["f"] == (3, digests[2])


def json_hash(state: bytes) -> str:
    return str(canonical.loads(state)["hash"])


@pytest.mark.parametrize("edit", ["body, hash kept", "type column"])
def test_an_untouched_head_edited_without_a_new_hash_is_not_signed_over(
    tamperable: tuple[str, Execute], edit: str
) -> None:
    url, execute = tamperable
    assert _checkpoint()[0] == 0
    with open_configured(url) as store:
        store.append("c3", message("later"))
    if edit == "type column":
        execute(
            "UPDATE stored_events SET topic='OperatorLeft' "
            "WHERE originator_id='c2' AND originator_version=2",
            (),
        )
    else:
        ((state,),) = execute(
            "SELECT state FROM stored_events WHERE originator_id='c2' AND originator_version=2",
            (),
        )
        forged = bytes(state).replace(b'"schema_version":1', b'"schema_version":2')
        assert forged != bytes(state)
        execute(
            "UPDATE stored_events SET state=%s WHERE originator_id='c2' AND originator_version=2",
            (forged,),
        )
    code, _, err = _checkpoint()
    assert code == 1
    assert "not signing over it: conversation c2: position 2: rewritten" in err


def test_the_writer_reads_only_the_newest_checkpoint(tmp_path: Path) -> None:
    """`read_last` finds the newest line from the end (lines longer than its 64 KiB step
    too); the log's middle is `audit verify --all`'s to check, not every writer's."""
    url = f"sqlite:///{tmp_path / 'l.db'}"
    paths = checkpoint.CheckpointPaths(tmp_path / "cp.key", tmp_path / "cp.jsonl")
    assert checkpoint.read_last(paths.log_file) is None
    with open_ledger(url, settings=LedgerSettings(database_url=url, privacy="off")) as store:
        for n in range(1500):  # about 120 KB of heads a line
            store.append(f"long-conversation-id-{n:05}", started())
        for n in range(3):
            store.append("long-conversation-id-00000", message(f"m{n}"))
            checkpoint.write_checkpoint(store, paths)
    written = checkpoint.read_log(paths.log_file)
    assert len(paths.log_file.read_bytes().splitlines()[-1]) > 1 << 16
    assert checkpoint.read_last(paths.log_file) == written[-1]
    assert [c.number for c in written] == [1, 2, 3]
    with paths.log_file.open("ab") as log:
        log.write(b"\n\n")
    assert checkpoint.read_last(paths.log_file) == written[-1]
    with paths.log_file.open("ab") as log:
        log.write(b'{"not": "a checkpoint"}\n')
    with pytest.raises(checkpoint.CheckpointError, match="last line of the checkpoint log"):
        checkpoint.read_last(paths.log_file)


def test_a_forged_checkpoint_in_the_middle_is_named_by_verify(
    tamperable: tuple[str, Execute],
) -> None:
    url, _ = tamperable
    assert _checkpoint()[0] == 0
    with open_configured(url) as store:
        store.append("c3", message("later"))
    assert _checkpoint()[0] == 0
    log_file = _paths(url).log_file
    lines = log_file.read_bytes().splitlines()
    first = canonical.loads(lines[0])
    first["signature"] = "00" * 64
    log_file.write_bytes(canonical.dumps(first) + b"\n" + lines[1] + b"\n")
    with open_configured(url) as store:
        store.append("c3", message("again"))
    # The newest checkpoint is genuine: the writer builds on it.
    assert _checkpoint()[0] == 0
    code, broken = _verify()
    assert code == 1
    assert broken == [
        "broken: checkpoint 1: signature does not verify with the checkpoint key (forged)",
        "broken: checkpoint 2: does not chain to the previous checkpoint",
    ]
