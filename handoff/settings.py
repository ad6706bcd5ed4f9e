"""Handoff and agent settings: one section of the root `Settings` (`threadline.app.settings`), read
from `THREADLINE_*` variables there and passed down. The language model itself is chosen in
`threadline.agent.settings` (`THREADLINE_LLM_*`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class HandoffSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ENV_PREFIX: ClassVar[str] = "THREADLINE_"

    # Key material for every signed token (handoff and visitor). Required when more than
    # one process serves the same database; unset means an ephemeral per-process key.
    secret: SecretStr | None = None
    handoff_token_ttl_s: int = Field(default=120, ge=5, le=3600)
    # An offer nobody accepts is closed (HandoffExpired) after this long.
    handoff_offer_ttl_s: int = Field(default=600, ge=5, le=86400)
    # EscalationSignalDetected with a score at or above this makes the agent offer voice.
    escalation_threshold: float = Field(default=0.6, ge=0.0, le=1.0)
    # Domain packs the chat agent understands (agent/packs/*.json), comma-separated; the
    # first is the tenant's home domain, "general" is always added last.
    agent_packs: str = Field(
        default="insurance,retail,appliances,subscriptions,telecom,travel,banking,healthcare",
        pattern=r"^[a-z0-9_,-]*$",
        max_length=400,
    )
