"""Master key rotation on SQLite and PostgreSQL: keys are re-wrapped under the new master key,
reads and erasure go on working (the subject index survives), destroyed keys stay
destroyed, an interrupted rotation resumes, and the old key alone is refused afterwards."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.support.ledgers import BACKENDS, ledger_url, open_configured
from threadline.app.cli import build
from threadline.ledger import privacy
from threadline.ledger.envelope import NewEvent
from threadline.ledger.erasure import erase_subject
from threadline.ledger.errors import KeyRotationUnavailableError, StoreUnavailableError
from threadline.ledger.masterkey import MasterKey
from threadline.ledger.rotation import rotate_master_key
from threadline.ledger.shredding import ShreddingCodec
from threadline.ledger.store import Ledger

OLD, NEW = secrets.token_urlsafe(32), secrets.token_urlsafe(32)


@pytest.fixture(params=[b for b in BACKENDS if b.values != ("memory",)])
def url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("THREADLINE_PRIVACY", "on")
    monkeypatch.setenv("THREADLINE_MASTER_KEY", OLD)
    monkeypatch.delenv("THREADLINE_MASTER_KEY_PREVIOUS", raising=False)
    return ledger_url(request.param, tmp_path, request)


def converse(store: Ledger, cid: str, phone: str, text: str) -> None:
    store.append_batch(
        cid,
        [
            NewEvent("ConversationStarted", {"channel": "sms", "visitor_ref": f"tel:{phone}"}),
            NewEvent("MessagePosted", {"role": "visitor", "text": text}),
        ],
    )


def text_of(store: Ledger, cid: str) -> str:
    return store.read(cid)[1].data.text  # type: ignore[attr-defined,no-any-return]


def table_of(store: Ledger) -> Any:
    codec = store.codec
    assert isinstance(codec, ShreddingCodec)
    return codec.table


def use(monkeypatch: pytest.MonkeyPatch, key: str, previous: str | None = None) -> None:
    monkeypatch.setenv("THREADLINE_MASTER_KEY", key)
    if previous is None:
        monkeypatch.delenv("THREADLINE_MASTER_KEY_PREVIOUS", raising=False)
    else:
        monkeypatch.setenv("THREADLINE_MASTER_KEY_PREVIOUS", previous)


def test_rotation_rewraps_everything_and_keeps_erasure_working(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_id, new_id = MasterKey(OLD.encode(), "").master_id, MasterKey(NEW.encode(), "").master_id
    with open_configured(url) as store:
        for i in range(5):
            converse(store, f"c{i}", f"+1555000000{i}", f"text {i}")
        erase_subject(store, "+15550000000")  # c0: destroyed before the rotation
        ref_before = erase_subject(store, "+19999999999").subject_ref

    use(monkeypatch, NEW, previous=OLD)
    with open_configured(url) as store:  # mid-rotation: both keys readable, new keys under NEW
        assert text_of(store, "c1") == "text 1"
        converse(store, "c5", "+15550000005", "text 5")
        assert table_of(store).active_key("c5").master_id == new_id
        report = rotate_master_key(store, page=2)
        assert (report.old_master_id, report.new_master_id) == (old_id, new_id)
        assert (report.rewrapped, report.completed) == (4, True)
        assert rotate_master_key(store).rewrapped == 0  # idempotent

    use(monkeypatch, NEW)
    with open_configured(url) as store:
        table = table_of(store)
        assert table.keyring_state().master_id == new_id
        assert {k.master_id for k in table.active_keys_after("", 100)} == {new_id}
        assert [text_of(store, f"c{i}") for i in range(6)] == [
            privacy.ERASED,  # not resurrected
            *[f"text {i}" for i in range(1, 6)],
        ]
        assert erase_subject(store, "+19999999999").subject_ref == ref_before
        assert erase_subject(store, "+15550000003").erased == ["c3"]
        assert text_of(store, "c3") == privacy.ERASED

    use(monkeypatch, OLD)
    with pytest.raises(StoreUnavailableError, match="is not the one"):
        open_configured(url)


def test_rotation_needs_the_previous_key(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_configured(url) as store:
        converse(store, "c1", "+15550000001", "hello")
        assert rotate_master_key(store).rewrapped == 0  # the configured key is the database's
    use(monkeypatch, NEW)
    with pytest.raises(StoreUnavailableError, match="is not the one"):
        open_configured(url)
    use(monkeypatch, NEW, previous=secrets.token_urlsafe(32))  # not the database's key
    with pytest.raises(StoreUnavailableError, match="is not the one"):
        open_configured(url)
    use(monkeypatch, OLD, previous=NEW)  # backwards: NEW never was the database's key
    with open_configured(url) as store:
        assert rotate_master_key(store).completed
        assert text_of(store, "c1") == "hello"


def test_an_interrupted_rotation_resumes(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_configured(url) as store:
        for i in range(5):
            converse(store, f"c{i}", f"+1555000000{i}", f"text {i}")
    use(monkeypatch, NEW, previous=OLD)
    with open_configured(url) as store:
        table = table_of(store)
        real = table.rewrap
        calls = [0]

        def dies_on_second_page(updates: Any) -> int:
            calls[0] += 1
            if calls[0] == 2:
                raise RuntimeError("killed")
            return real(updates)  # type: ignore[no-any-return]

        monkeypatch.setattr(table, "rewrap", dies_on_second_page)
        with pytest.raises(RuntimeError):
            rotate_master_key(store, page=2)
        monkeypatch.setattr(table, "rewrap", real)
        assert [text_of(store, f"c{i}") for i in range(5)] == [f"text {i}" for i in range(5)]
        report = rotate_master_key(store, page=2)
        assert (report.rewrapped, report.completed) == (3, True)
    use(monkeypatch, NEW)
    with open_configured(url) as store:
        assert [text_of(store, f"c{i}") for i in range(5)] == [f"text {i}" for i in range(5)]


def test_rotation_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("THREADLINE_MASTER_KEY", OLD)
    monkeypatch.delenv("THREADLINE_MASTER_KEY_PREVIOUS", raising=False)
    with open_configured() as store:
        converse(store, "c1", "+15550000001", "hello")
    runner = CliRunner()
    result = runner.invoke(build(), ["privacy", "rotate"])
    assert (result.exit_code, result.stdout.startswith("nothing to do")) == (0, True)
    use(monkeypatch, NEW)
    result = runner.invoke(build(), ["privacy", "rotate"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "is not the one" in result.stderr
    use(monkeypatch, NEW, previous=OLD)
    result = runner.invoke(build(), ["privacy", "rotate", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["rewrapped"] == 1
    assert NEW not in result.stdout + result.stderr
    assert OLD not in result.stdout + result.stderr


def test_rotation_without_encryption_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADLINE_PRIVACY", "off")
    monkeypatch.delenv("THREADLINE_MASTER_KEY", raising=False)
    store = open_configured(f"sqlite:///{tmp_path / 'clear.db'}")
    with store, pytest.raises(KeyRotationUnavailableError):
        rotate_master_key(store)


def test_a_database_made_before_the_index_key_was_stored_is_upgraded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    monkeypatch.setenv("THREADLINE_MASTER_KEY", OLD)
    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    master = MasterKey(OLD.encode(), "")
    with open_configured(url) as store:
        # As the first version wrote it: identifiers blinded with the derived index key,
        # and no index key in the keyring row.
        codec = store.codec
        assert isinstance(codec, ShreddingCodec)
        codec._index_key = master.legacy_index_key()
        converse(store, "c1", "+15550000001", "hello")
    with sqlite3.connect(tmp_path / "legacy.db") as db:
        db.execute("UPDATE threadline_keyring SET index_key = NULL")
    with open_configured(url) as store:
        assert table_of(store).keyring_state().index_key is not None  # stored, wrapped
        assert erase_subject(store, "+15550000001").erased == ["c1"]
