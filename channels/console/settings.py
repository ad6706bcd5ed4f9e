"""Console settings: one section of the root `Settings` (`threadline.app.settings`), read from
`THREADLINE_CONSOLE_*` variables there and passed down."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


class ConsoleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ENV_PREFIX: ClassVar[str] = "THREADLINE_CONSOLE_"

    # Where operator accounts and sessions live; empty means the ledger's database
    # (THREADLINE_DATABASE_URL), so one backup holds both.
    operators_url: str = ""
    session_ttl_seconds: int = Field(default=8 * 3600, ge=60, le=30 * 24 * 3600)
    # Secure cookies need TLS; turn on wherever the console is reached over HTTPS.
    cookie_secure: bool = False
    # Failed logins allowed per operator name and per client address within the window.
    login_max_failures: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=300, ge=1)
    # PII is masked in the view unless the operator turns masking off.
    mask_pii_by_default: bool = True
