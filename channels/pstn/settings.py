"""PSTN settings: one section of the root `Settings` (`threadline.app.settings`), read from
`THREADLINE_PSTN_*` variables there and passed down."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator


class PstnSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ENV_PREFIX: ClassVar[str] = "THREADLINE_PSTN_"

    # The SIP trunk (host:port) outbound INVITEs go to: sip:+NUMBER@trunk. Empty: no dial-out.
    trunk: str | None = None
    # Where our SIP user agent listens (UDP) and what it puts in Via/Contact.
    sip_host: str = "127.0.0.1"
    sip_port: int = Field(default=5070, ge=0, le=65535)
    from_user: str = "threadline"
    # RTP: the address in our SDP and the even/odd port pairs we may bind.
    rtp_host: str = "127.0.0.1"
    rtp_port_min: int = Field(default=30000, ge=1024, le=65534)
    rtp_port_max: int = Field(default=30999, ge=1025, le=65535)
    # Offer order: PCMU (0) then PCMA (8); the far end picks.
    codecs: tuple[int, ...] = (0, 8)
    answer_timeout_s: float = Field(default=30.0, gt=0)
    # A call with no RTP from the far end for this long is hung up (dead peer).
    media_timeout_s: float = Field(default=30.0, gt=0)

    @field_validator("codecs")
    @classmethod
    def _g711_only(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(pt not in (0, 8) for pt in value):
            raise ValueError("codecs must be a non-empty list of 0 (PCMU) and 8 (PCMA)")
        return value

    def trunk_address(self) -> tuple[str, int] | None:
        if not self.trunk:
            return None
        host, _, port = self.trunk.rpartition(":")
        if not host:
            return (self.trunk, 5060)
        return (host.strip("[]"), int(port))
