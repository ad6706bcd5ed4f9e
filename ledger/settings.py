"""Ledger settings, from `THREADLINE_*` environment variables."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class LedgerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="THREADLINE_", extra="ignore")

    # sqlite:///relative/or/absolute/path, sqlite:///:memory:, memory://, postgresql://...
    database_url: str = "sqlite:///threadline.db"
