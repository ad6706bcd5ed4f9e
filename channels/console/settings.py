"""Console settings: one section of the root `Settings` (`threadline.app.settings`), read from
`THREADLINE_CONSOLE_*` variables there and passed down."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


class ConsoleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ENV_PREFIX: ClassVar[str] = "THREADLINE_CONSOLE_"

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
    # Taking over conversations (issue 16).
    # The tenant this console's operators serve; "*" serves every tenant.
    tenant: str = Field(default="*", min_length=1, max_length=64)
    # An available operator's page re-announces itself this often; a silent one drops out.
    presence_ttl_seconds: int = Field(default=60, ge=5, le=3600)
    # Average time a person spends on one conversation, for the visitor's expected wait.
    expected_handle_seconds: int = Field(default=180, ge=10, le=24 * 3600)
    # An escalation signal (frustration, compliance) at this score also asks for a person.
    human_signal_threshold: float = Field(default=0.8, ge=0.0, le=1.0)
    # Operator actions (join, message, leave, presence) allowed per operator per minute.
    actions_per_minute: int = Field(default=60, ge=1, le=10000)
