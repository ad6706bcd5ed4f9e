"""`threadline erase` and the privacy defaults: the embedded SQLite default encrypts with a
generated key file, a missing or wrong master key is refused (but the audit still runs), bad
input changes nothing, and PostgreSQL without a key stores in clear unless told `on`."""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.ledgers import open_configured
from threadline.app.cli import build
from threadline.ledger import privacy
from threadline.ledger.erasure import erase_subject
from threadline.ledger.errors import ErasureUnavailableError, StoreUnavailableError

PHONE = "+15550001111"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(build(), list(args))
    return result.exit_code, result.stdout, result.stderr


def append(cid: str, event_type: str, data: dict[str, object]) -> None:
    code, _, err = run("append", cid, event_type, "--data", json.dumps(data))
    assert code == 0, err


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The product default: an SQLite file, no privacy settings at all."""
    for name in list(os.environ):
        if name.startswith("THREADLINE_"):
            monkeypatch.delenv(name)
    path = tmp_path / "threadline.db"
    monkeypatch.setenv("THREADLINE_DATABASE_URL", f"sqlite:///{path}")
    append("c1", "ConversationStarted", {"channel": "sms", "visitor_ref": f"tel:{PHONE}"})
    append("c1", "MessagePosted", {"role": "visitor", "text": "I am Jane Roe"})
    append("c2", "ConversationStarted", {"channel": "chat", "visitor_ref": "visitor:other"})
    append("c2", "MessagePosted", {"role": "visitor", "text": "someone else"})
    return path


def test_the_default_sqlite_store_encrypts_with_a_generated_key_file(db: Path) -> None:
    key_file = db.with_name("threadline.db.key")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    raw = b"".join(p.read_bytes() for p in db.parent.glob("threadline.db*"))
    assert b"Jane Roe" not in raw
    assert PHONE.encode() not in raw
    code, out, _ = run("replay", "c1", "--json")
    assert code == 0
    assert "Jane Roe" in out


def test_erase_by_cli(db: Path) -> None:
    code, out, err = run("erase", PHONE, "--reason", "DSR-7")
    assert code == 0, err
    assert "erased hmac:" in out
    assert "from 1 conversation(s): c1" in out
    assert PHONE not in out + err  # the terminal does not collect the identifier
    code, out, _ = run("replay", "c1", "--json")
    assert code == 0
    assert "Jane Roe" not in out
    assert privacy.ERASED in out
    assert "SubjectErased" in out
    code, out, _ = run("replay", "c2", "--json")
    assert "someone else" in out
    code, out, _ = run("replay", "c1", "--as", "transcript")
    assert code == 0
    assert privacy.ERASED in out
    code, out, _ = run("audit", "verify", "--all")
    assert code == 0
    assert "5 events in 2 conversation(s)" in out
    code, out, _ = run("audit", "export", "c1")
    assert code == 0
    assert "Jane Roe" not in out
    assert PHONE not in out

    code, out, _ = run("erase", PHONE, "--json")
    assert code == 0
    report = json.loads(out)
    assert (report["erased"], report["already_erased"]) == ([], ["c1"])
    code, out, _ = run("erase", "+19999999999")
    assert (code, out.startswith("nothing to erase")) == (0, True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("erase", ""), "subject must be"),
        (("erase", " +1555"), "subject must be"),
        (("erase", "tel:\x01"), "subject must be"),
        (("erase", "x" * 201), "subject must be"),
        (("erase", PHONE, "--reason", "r" * 201), "reason must be"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    db: Path, args: tuple[str, ...], message: str
) -> None:
    code, out, err = run(*args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert message in err
    with open_configured() as store:
        assert (store.version("c1"), store.version("c2")) == (2, 2)
        assert store.read("c1")[1].data.text == "I am Jane Roe"  # type: ignore[attr-defined]


def test_a_missing_key_file_is_refused_but_the_audit_runs(db: Path) -> None:
    db.with_name("threadline.db.key").unlink()
    code, _, err = run("replay", "c1")
    assert code == 1
    assert err.count("\n") == 1
    assert "no master key is configured" in err
    assert not db.with_name("threadline.db.key").exists()  # no new key was made up
    code, out, _ = run("audit", "verify", "c1")
    assert (code, "2 events" in out) == (0, True)


def test_a_wrong_master_key_is_refused(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_MASTER_KEY", secrets.token_urlsafe(32))
    code, _, err = run("erase", PHONE)
    assert code == 1
    assert "is not the one this database" in err
    with pytest.raises(StoreUnavailableError):
        open_configured()
    monkeypatch.setenv("THREADLINE_MASTER_KEY", "short")
    code, _, err = run("replay", "c1")
    assert (code, "≥ 32" in err) == (1, True)
    assert "short" not in err


def test_erase_without_encryption_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'clear.db'}")
    monkeypatch.setenv("THREADLINE_PRIVACY", "off")
    append("c1", "ConversationStarted", {"channel": "sms", "visitor_ref": f"tel:{PHONE}"})
    assert PHONE.encode() in (tmp_path / "clear.db").read_bytes()
    assert not (tmp_path / "clear.db.key").exists()
    code, _, err = run("erase", PHONE)
    assert code == 1
    assert "erasure needs encrypted personal data" in err


@pytest.mark.postgres
def test_postgres_without_a_master_key(
    fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("THREADLINE_MASTER_KEY", raising=False)
    monkeypatch.delenv("THREADLINE_MASTER_KEY_FILE", raising=False)
    monkeypatch.setenv("THREADLINE_PRIVACY", "on")
    with pytest.raises(StoreUnavailableError, match="needs a master key"):
        open_configured(fresh_postgres_url)
    monkeypatch.setenv("THREADLINE_PRIVACY", "auto")
    from threadline.ledger.envelope import NewEvent

    with open_configured(fresh_postgres_url) as store:
        store.append("c1", NewEvent("ConversationStarted", {"channel": "sms"}))
        store.append("c1", NewEvent("MessagePosted", {"role": "visitor", "text": "clear"}))
        assert b'"text":"clear"' in store.recorder.select_conversation("c1")[1].state
        with pytest.raises(ErasureUnavailableError):
            erase_subject(store, PHONE)
    # Configuring a key later encrypts from then on; older records stay readable.
    monkeypatch.setenv("THREADLINE_MASTER_KEY", secrets.token_urlsafe(32))
    with open_configured(fresh_postgres_url) as store:
        store.append("c1", NewEvent("MessagePosted", {"role": "visitor", "text": "sealed"}))
        assert b"sealed" not in store.recorder.select_conversation("c1")[2].state
        assert [e.data.text for e in store.read("c1")[1:]] == ["clear", "sealed"]  # type: ignore[attr-defined]
