"""Messaging settings: one section of the root `Settings` (`threadline.app.settings`), read from
`THREADLINE_*` variables there and passed down.

Secrets are `SecretStr` so they never show up in a repr or a log line.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr


class MessagingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ENV_PREFIX: ClassVar[str] = "THREADLINE_"
    # Internal tuning: kept for tests and embedding code, not settable from the environment.
    TUNING: ClassVar[frozenset[str]] = frozenset({"provider_timeout_s"})

    # Twilio (or any Twilio-compatible provider): webhooks are signed with the auth token.
    twilio_auth_token: SecretStr | None = None
    twilio_account_sid: str | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    twilio_sms_from: str | None = None
    twilio_whatsapp_from: str | None = None
    # Where Twilio posts delivery status callbacks (a public URL of this service).
    twilio_status_callback_url: str | None = None

    # WhatsApp Cloud API (Meta): app secret signs webhooks, verify token answers the handshake.
    whatsapp_app_secret: SecretStr | None = None
    whatsapp_verify_token: SecretStr | None = None
    whatsapp_access_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = None
    whatsapp_api_base_url: str = "https://graph.facebook.com/v21.0"

    # "Continue on WhatsApp" links: click-to-chat base URL (the number and text are appended).
    whatsapp_link_base: str = "https://wa.me"

    # The URL the provider signed, when a proxy in front of us rewrites scheme/host/port.
    # Empty: the request's own URL is used.
    public_base_url: str | None = None

    # Outbound REST calls: bounded, so a slow provider cannot hold a worker forever.
    provider_timeout_s: float = 10.0
