"""Serves the embeddable widget (`/widget.js`, `/widget/*.js` modules), the `/embed` demo and
the favicon.

Files ship inside the package; nothing is fetched from a CDN.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from threadline.access.errors import NotFoundError

router = APIRouter(include_in_schema=False)

_STATIC = resources.files("threadline.channels.widget") / "static"
_CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'"
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


@cache
def _read(name: str) -> bytes:
    return (_STATIC / name).read_bytes()


@router.get("/widget.js")
async def widget_js() -> Response:
    return Response(_read("widget.js"), media_type="text/javascript", headers=_HEADERS)


@router.get("/widget/{module}.js")
async def widget_module(module: str) -> Response:
    """Optional modules loaded by the widget (e.g. the voice leg), one file each."""
    if not module.replace("-", "").isalnum() or not (_STATIC / f"{module}.js").is_file():
        raise NotFoundError("no such widget module")
    return Response(_read(f"{module}.js"), media_type="text/javascript", headers=_HEADERS)


@router.get("/favicon.svg")
@router.get("/favicon.ico")
async def favicon() -> Response:
    """One small SVG for every page (the widget demo, the console); browsers ask for
    /favicon.ico by themselves, the pages link /favicon.svg."""
    headers = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
    return Response(_read("favicon.svg"), media_type="image/svg+xml", headers=headers)


@router.get("/embed")
async def embed() -> HTMLResponse:
    return HTMLResponse(
        _read("embed.html"),
        headers={**_HEADERS, "Content-Security-Policy": _CSP},
    )
