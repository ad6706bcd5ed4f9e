"""Console settings, from `THREADLINE_CONSOLE_*` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="THREADLINE_CONSOLE_", extra="ignore")

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
