"""Email channel settings: one section of the root `Settings` (`threadline.app.settings`), read
from `THREADLINE_*` variables there and passed down (see docs/email.md)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class EmailSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ENV_PREFIX: ClassVar[str] = "THREADLINE_"

    # host:port the inbound SMTP listener binds; empty: no email channel.
    smtp_listen: str | None = None
    # Support addresses the listener accepts mail for (comma-separated); others get 550.
    email_addresses: str = ""
    # Outbound: the relay (host:port), the From address, STARTTLS and optional login.
    smtp_relay: str | None = None
    email_from: str | None = None
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = Field(default=15.0, gt=0)
    # Largest message accepted (SMTP SIZE and the DATA check), bytes.
    email_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Tenant of conversations that email starts.
    email_tenant: str = "default"

    def addresses(self) -> frozenset[str]:
        return frozenset(a.strip().lower() for a in self.email_addresses.split(",") if a.strip())


def host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected host:port, got {value!r}")
    return host.strip("[]"), int(port)
