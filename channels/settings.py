"""Channel settings (HTTP API, widget, auth limits): one section of the root `Settings`
(`threadline.app.settings`), read from `THREADLINE_*` variables there and passed down."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class ChannelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ENV_PREFIX: ClassVar[str] = "THREADLINE_"

    # Same variable the ledger reads; the API key table lives in the same database.
    database_url: str = "sqlite:///threadline.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # The interpreter's thread switch interval in `threadline serve` (sys.setswitchinterval;
    # Python's default is 5 ms). The event loop is busy while the group committer thread
    # needs the GIL back after every SQLite step (each inserted row, each commit): at 5 ms a
    # busy loop made the committer wait that long each time, and halved HTTP appends/s.
    switch_interval_ms: float = Field(default=0.5, gt=0, le=100)

    # Visitor tokens are signed with THREADLINE_SECRET (read by `threadline.handoff.settings`).
    visitor_token_ttl_s: int = Field(default=24 * 3600, ge=60)
    # Tenant given to conversations started without an API key (the embedded widget).
    public_tenant: str = Field(default="default", min_length=1, max_length=64)
    allow_anonymous_conversations: bool = True

    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_text_chars: int = Field(default=4000, ge=1, le=8000)

    # Token buckets per principal: visitor tokens are people typing, API keys are adapters.
    visitor_rate_per_s: float = Field(default=5.0, gt=0)
    visitor_burst: int = Field(default=30, ge=1)
    key_rate_per_s: float = Field(default=5000.0, gt=0)
    key_burst: int = Field(default=10000, ge=1)
    anonymous_rate_per_s: float = Field(default=2.0, gt=0)
    anonymous_burst: int = Field(default=30, ge=1)
    # Failed authentications per client address (or SMS/WhatsApp sender): past the burst the
    # caller gets 429 (on the token routes that can write, before the token is looked at).
    failed_auth_rate_per_s: float = Field(default=0.5, gt=0)
    failed_auth_burst: int = Field(default=20, ge=1)
    # Where the buckets live: "database" = one budget across replicas (a row per principal
    # in the database, one statement per check), "process" = per replica; "auto" is
    # database on PostgreSQL, process on SQLite (one node: the same thing, cheaper).
    rate_limits: Literal["auto", "database", "process"] = "auto"

    # Idle SSE streams send a comment this often so proxies keep them open; the stream also
    # re-reads the ledger then, which bounds the delay if a change notification was lost.
    stream_keepalive_s: float = Field(default=15.0, gt=0)

    # How often the server closes stale handoffs (offers nobody accepted, tokens nobody
    # redeemed) with HandoffExpired; 0 turns it off (another process does it).
    handoff_expiry_interval_s: float = Field(default=5.0, ge=0)
