"""API key scopes on both key stores: a key keeps the scopes it was created with (through
revocation too), a table made before scopes existed gets the column and its keys none, an
unknown scope is refused, and `keys create --scope` / `keys list` show them."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from threadline.access.errors import InvalidInputError
from threadline.access.keys import DATA_SUBJECTS, KeyVerifier, new_key, open_key_store
from threadline.app.cli import build

OLD_SCHEMA = """CREATE TABLE threadline_api_keys (
    key_id TEXT PRIMARY KEY, name TEXT NOT NULL, tenant TEXT NOT NULL,
    secret_hash TEXT NOT NULL, created_at {ts} NOT NULL, revoked {flag} NOT NULL DEFAULT {no})"""
OLD_ROW = (
    "INSERT INTO threadline_api_keys VALUES "
    "('00aa00aa00aa00aa', 'old', 'default', 'h', {now}, {no})"
)


def _sqlite(tmp_path: Path) -> tuple[str, Callable[[str], None]]:
    path = tmp_path / "keys.db"

    def execute(sql: str) -> None:
        with sqlite3.connect(path) as con:
            con.execute(sql)

    return f"sqlite:///{path}", execute


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'keys.db'}", "sqlite"
    return str(request.getfixturevalue("fresh_postgres_url")), "postgres"


def test_scopes_are_stored_and_survive_revocation(store_url: tuple[str, str]) -> None:
    url, _ = store_url
    token, officer = new_key("privacy-officer", "default", [DATA_SUBJECTS])
    _, adapter = new_key("adapter", "default")
    store = open_key_store(url)
    try:
        store.add(officer)
        store.add(adapter)
        assert KeyVerifier(store).verify(token).scopes == frozenset({DATA_SUBJECTS})
        got = store.get(adapter.key_id)
        assert got is not None
        assert got.scopes == frozenset()
        assert {r.key_id: r.scopes for r in store.list()} == {
            officer.key_id: frozenset({DATA_SUBJECTS}),
            adapter.key_id: frozenset(),
        }
        assert store.revoke(officer.key_id)
        revoked = store.get(officer.key_id)
        assert revoked is not None
        assert revoked.revoked
        assert revoked.scopes == officer.scopes
    finally:
        store.close()


def test_a_table_made_before_scopes_is_migrated(store_url: tuple[str, str]) -> None:
    url, kind = store_url
    if kind == "sqlite":
        _, execute = _sqlite(Path(url.removeprefix("sqlite:///")).parent)
        execute(OLD_SCHEMA.format(ts="TEXT", flag="INTEGER", no="0"))
        execute(OLD_ROW.format(now=f"'{datetime.now(UTC).isoformat()}'", no="0"))
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(OLD_SCHEMA.format(ts="TIMESTAMPTZ", flag="BOOLEAN", no="FALSE"))
            conn.execute(OLD_ROW.format(now="now()", no="FALSE"))
    store = open_key_store(url)
    try:
        old = store.get("00aa00aa00aa00aa")
        assert old is not None
        assert old.scopes == frozenset()
        _, officer = new_key("officer", "default", [DATA_SUBJECTS])
        store.add(officer)
        got = store.get(officer.key_id)
        assert got is not None
        assert got.scopes == frozenset({DATA_SUBJECTS})
    finally:
        store.close()
    open_key_store(url).close()  # opening a migrated table again changes nothing


def test_an_unknown_scope_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="unknown scope 'data-subject'"):
        new_key("officer", "default", ["data-subject"])


def test_keys_create_with_a_scope_and_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_DATABASE_URL", f"sqlite:///{tmp_path / 't.db'}")
    runner = CliRunner()
    made = runner.invoke(
        build(), ["keys", "create", "--name", "officer", "--scope", "data-subjects"]
    )
    assert made.exit_code == 0, made.stderr
    assert "scopes data-subjects) created" in made.stderr
    plain = runner.invoke(build(), ["keys", "create", "--name", "adapter"])
    assert plain.exit_code == 0, plain.stderr
    bad = runner.invoke(build(), ["keys", "create", "--name", "x", "--scope", "admin"])
    assert bad.exit_code != 0
    assert "unknown scope 'admin'" in bad.stderr
    listed = runner.invoke(build(), ["keys", "list"])
    rows = {line.split("\t")[1]: line.split("\t")[-1] for line in listed.stdout.splitlines()}
    assert rows == {"officer": "data-subjects", "adapter": "-"}
