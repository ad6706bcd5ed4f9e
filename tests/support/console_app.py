"""An application for the console's tests: the console mounted on a bare FastAPI app over the
ledger named by THREADLINE_DATABASE_URL (uvicorn --factory tests.support.console_app:create)."""

from __future__ import annotations

import os

from fastapi import FastAPI

from threadline.channels.console.wiring import mount
from threadline.ledger.store import open_ledger


def create() -> FastAPI:
    url = os.environ["THREADLINE_DATABASE_URL"]
    ledger = open_ledger(url)
    app = FastAPI()
    mount(app, ledger, url)
    return app
