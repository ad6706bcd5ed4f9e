"""The one backend dispatch: every store reads the kind of database from `Backend.parse`,
and no module tests URL prefixes itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from threadline.ledger.backends import Backend, Kind
from threadline.ledger.errors import StoreUnavailableError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["ledger", "projections", "handoff", "agent", "access", "streaming", "channels", "app"]


@pytest.mark.parametrize(
    ("url", "kind", "path", "in_memory"),
    [
        ("memory://", Kind.MEMORY, None, True),
        ("sqlite:///threadline.db", Kind.SQLITE, "threadline.db", False),
        ("sqlite:////tmp/x.db", Kind.SQLITE, "/tmp/x.db", False),
        ("sqlite:///:memory:", Kind.SQLITE, ":memory:", True),
        ("postgresql://u@h:5432/db", Kind.POSTGRES, None, False),
        ("postgres://u@h/db", Kind.POSTGRES, None, False),
        ("postgresql+psycopg://u@h/db", Kind.POSTGRES, None, False),
    ],
)
def test_parse(url: str, kind: Kind, path: str | None, in_memory: bool) -> None:
    backend = Backend.parse(url)
    assert (backend.kind, backend.path, backend.in_memory) == (kind, path, in_memory)
    if kind is Kind.POSTGRES:
        assert backend.dsn.startswith("postgresql://")


@pytest.mark.parametrize("url", ["mysql://u:s3cret@h/db", "sqlite://", "sqlite:///", "nonsense"])
def test_anything_else_is_refused_without_its_password(url: str) -> None:
    with pytest.raises(StoreUnavailableError) as info:
        Backend.parse(url)
    assert "s3cret" not in str(info.value)


PREFIX_CHECK = re.compile(
    r"""startswith\(\(?["'](postgres|sqlite|memory)|[!=]=\s*["'](memory://|sqlite:///)"""
    r"""|__name__\s*==\s*["']\w+Recorder"""
)


def test_no_module_dispatches_on_url_prefixes_or_class_names() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.name != "backends.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if PREFIX_CHECK.search(line)
    ]
    assert offenders == []
