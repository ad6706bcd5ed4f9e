"""Handoff and agent settings: one section of the root `Settings` (`threadline.app.settings`), read
from `THREADLINE_*` variables there and passed down. The language model itself is chosen in
`threadline.agent.settings` (`THREADLINE_LLM_*`)."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

# A pack name as agent/packs/*.json spells it; whether the file exists is checked at
# start-up by the composition root (`threadline.app.settings`), which may import the agent.
_PACK = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
# A tenant id as API keys and operator accounts carry it (no "=", ";" or ",").
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")


def parse_tenant_packs(value: str) -> dict[str, tuple[str, ...]]:
    """`"acme=retail,appliances;globex=insurance"` as {tenant: pack names}, strictly: every
    entry is `tenant=pack[,pack…]`, no tenant twice, no pack twice in an entry."""
    out: dict[str, tuple[str, ...]] = {}
    if not value.strip():
        return out
    for entry in value.split(";"):
        tenant, eq, names = entry.partition("=")
        tenant = tenant.strip()
        if not eq or not _TENANT.fullmatch(tenant):
            raise ValueError(f"expected tenant=pack,pack;… but got {entry.strip()!r}")
        if tenant in out:
            raise ValueError(f"tenant {tenant!r} is listed twice")
        packs = tuple(n.strip() for n in names.split(","))
        for name in packs:
            if not _PACK.fullmatch(name):
                raise ValueError(f"tenant {tenant!r}: bad pack name {name!r}")
        if len(set(packs)) != len(packs):
            raise ValueError(f"tenant {tenant!r} lists a pack twice")
        out[tenant] = packs
    return out


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
    # Packs per tenant, overriding THREADLINE_AGENT_PACKS for the tenants named:
    # "acme=retail,appliances;globex=insurance" (first pack = that tenant's home domain,
    # "general" added last). Tenants without an entry use THREADLINE_AGENT_PACKS.
    agent_tenant_packs: str = Field(default="", max_length=4000)

    @field_validator("agent_tenant_packs")
    @classmethod
    def _tenant_packs_parse(cls, value: str) -> str:
        parse_tenant_packs(value)
        return value

    def packs_by_tenant(self) -> dict[str, tuple[str, ...]]:
        return parse_tenant_packs(self.agent_tenant_packs)

    def pack_names(self) -> tuple[str, ...]:
        """The deployment-wide packs (`agent_packs`), as names."""
        return tuple(n.strip() for n in self.agent_packs.split(",") if n.strip())
