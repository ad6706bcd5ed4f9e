"""The HTTP app serves one favicon, and every page it serves links it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from threadline.app.bootstrap import bootstrap
from threadline.channels.http.app import create_app

ROOT = Path(__file__).resolve().parents[2]
PAGES = [
    *sorted((ROOT / "channels" / "widget" / "static").glob("*.html")),
    *sorted((ROOT / "channels" / "console" / "static").glob("*.html")),
]


def test_the_app_serves_the_favicon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_DATABASE_URL", "memory://")
    monkeypatch.setenv("THREADLINE_SECRET", "favicon-secret-0123456789abcdef-0123")
    with TestClient(create_app(bootstrap())) as client:
        for path in ("/favicon.svg", "/favicon.ico"):
            response = client.get(path)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("image/svg+xml")
            assert response.content.startswith(b"<svg")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_page_links_it(page: Path) -> None:
    assert '<link rel="icon" href="/favicon.svg" type="image/svg+xml">' in page.read_text()
