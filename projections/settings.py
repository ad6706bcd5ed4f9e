"""Projection settings: one section of the root `Settings` (`threadline.app.settings`), read from
`THREADLINE_*` variables there and passed down."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


class ProjectionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ENV_PREFIX: ClassVar[str] = "THREADLINE_"
    # Internal tuning: kept for tests and embedding code, not settable from the environment.
    TUNING: ClassVar[frozenset[str]] = frozenset(
        {
            "projections_gap_timeout_s",
            "projections_max_gaps",
            "projections_batch_size",
            "projections_snapshot_interval",
        }
    )

    # Where read models live; default: the ledger's own database (THREADLINE_DATABASE_URL).
    projections_database_url: str | None = None
    # How often a runner polls the global log when the in-process subscription is silent.
    projections_poll_interval_s: float = Field(default=0.5, gt=0, le=60)
    # How long a missing global sequence number is waited for before it is given up.
    projections_gap_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    projections_batch_size: int = Field(default=500, ge=1, le=5000)
    projections_max_gaps: int = Field(default=1000, ge=0, le=100_000)
    # Agent-context snapshots this process keeps for context reads (projections.snapshots;
    # 0: none, every read folds from position 1). One of a long conversation takes ~100-180 KB.
    projections_context_snapshots: int = Field(default=1024, ge=0, le=100_000)
    # A snapshot at every this many positions of a conversation read at its head.
    projections_snapshot_interval: int = Field(default=128, ge=1, le=100_000)
