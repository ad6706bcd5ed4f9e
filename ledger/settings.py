"""Ledger settings: one section of the root `Settings` (`threadline.app.settings`), read from
`THREADLINE_*` variables there and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class LedgerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ENV_PREFIX: ClassVar[str] = "THREADLINE_"
    # Internal tuning: kept for tests and embedding code, not settable from the environment.
    TUNING: ClassVar[frozenset[str]] = frozenset(
        {"postgres_max_overflow", "postgres_connect_timeout"}
    )

    # sqlite:///relative/or/absolute/path, sqlite:///:memory:, memory://, postgresql://...
    database_url: str = "sqlite:///threadline.db"
    # Concurrent appends in one process share a transaction (ledger/groupcommit.py).
    group_commit: bool = True
    # Partitions of the global log (docs/scaling.md): a conversation belongs to partition
    # sha256(id) mod N, each with its own gap-free sequence and lock. 1 = one global
    # sequence. Fixed when the database is created: opening it with another N is refused.
    log_partitions: int = Field(default=1, ge=1, le=256)

    # PostgreSQL connection pool (per process). Appends hold a connection for one round trip.
    postgres_pool_size: int = 5
    postgres_max_overflow: int = 10
    postgres_connect_timeout: float = 5.0

    # Crypto-shredding of personal fields (docs/privacy.md). auto: on when a master key is
    # configured, for an SQLite file (key file generated beside it) and in memory; off, with
    # a warning, for PostgreSQL without a key. on: refuse to open without a master key.
    # off: store new data in clear (encrypted data already stored stays readable).
    privacy: Literal["auto", "on", "off"] = "auto"
    # THREADLINE_MASTER_KEY, ≥ 32 characters. Deliberately not derived from THREADLINE_SECRET:
    # a token-signing secret is rotated freely, a master key only by re-wrapping data keys.
    master_key: SecretStr | None = None
    master_key_file: Path | None = None
    # During a master key rotation (docs/privacy.md): the key being replaced.
    master_key_previous: SecretStr | None = None
    # How long a process trusts a cached data key; an erasure by another process is seen
    # sooner, within shredding.MARK_INTERVAL_S (0.25 s), through the key table's erasure mark.
    key_cache_ttl_s: float = Field(default=30.0, ge=0)

    # Signed checkpoints of conversation heads (ledger/checkpoint.py, docs/integrity.md):
    # the Ed25519 key file and the checkpoint log, both kept outside the database. For an
    # SQLite file database they default to `<database>.checkpoint-key` and
    # `<database>.checkpoints.jsonl`; for PostgreSQL they must be set.
    checkpoint_key_file: Path | None = None
    checkpoint_file: Path | None = None
    # How often `threadline serve` signs a checkpoint itself when the log advanced since the
    # last one (only where the two files above are known: an SQLite file database, or both
    # set); one replica writes (a PostgreSQL advisory lock). 0 turns it off (cron does it).
    checkpoint_interval_s: float = Field(default=300.0, ge=0)
