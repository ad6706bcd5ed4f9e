"""Ledger settings, from `THREADLINE_*` environment variables."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class LedgerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="THREADLINE_", extra="ignore")

    # sqlite:///relative/or/absolute/path, sqlite:///:memory:, memory://, postgresql://...
    database_url: str = "sqlite:///threadline.db"
    # Concurrent appends in one process share a transaction (ledger/groupcommit.py).
    group_commit: bool = True

    # PostgreSQL connection pool (per process). Appends hold a connection for one round trip.
    postgres_pool_size: int = 5
    postgres_max_overflow: int = 10
    postgres_connect_timeout: float = 5.0
