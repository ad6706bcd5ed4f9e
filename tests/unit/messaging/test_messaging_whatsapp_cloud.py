from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import SecretStr

from tests.support.fake_provider import fake_provider
from threadline.channels.messaging.errors import (
    DeliveryFailedError,
    InvalidSignatureError,
    MalformedWebhookError,
    ProviderNotConfiguredError,
    VerificationRefusedError,
)
from threadline.channels.messaging.provider import DeliveryReport, InboundMessage, WebhookRequest
from threadline.channels.messaging.settings import MessagingSettings
from threadline.channels.messaging.whatsapp_cloud import WhatsAppCloudProvider, signature_for

SECRET = "app-secret"
URL = "https://hooks.example.test/v1/channels/whatsapp"


def provider(**extra: object) -> WhatsAppCloudProvider:
    return WhatsAppCloudProvider(
        MessagingSettings(
            whatsapp_app_secret=SecretStr(SECRET),
            whatsapp_verify_token=SecretStr("verify-me"),
            **extra,  # type: ignore[arg-type]
        )
    )


def payload(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA1", "changes": [{"field": "messages", "value": value}]}],
    }


def request(body: dict[str, Any] | bytes, signature: str | None = None) -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sig = signature_for(SECRET, raw) if signature is None else signature
    return WebhookRequest(URL, {"x-hub-signature-256": sig}, raw)


TEXT = payload(
    {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15559990000", "phone_number_id": "PN1"},
        "contacts": [{"profile": {"name": "Ada"}, "wa_id": "15551230001"}],
        "messages": [
            {
                "from": "15551230001",
                "id": "wamid.A1",
                "timestamp": "1700000000",
                "type": "text",
                "text": {"body": "about my claim"},
            },
            {"from": "15551230001", "id": "wamid.A2", "timestamp": "1700000001", "type": "image"},
        ],
    }
)


def test_signed_payload_is_parsed() -> None:
    req = request(TEXT)
    provider().authenticate(req)
    assert provider().parse(req) == [
        InboundMessage("whatsapp_cloud", "whatsapp", "wamid.A1", "+15551230001", "+15559990000",
                       "about my claim"),
        InboundMessage("whatsapp_cloud", "whatsapp", "wamid.A2", "+15551230001", "+15559990000",
                       "[image message]"),
    ]  # fmt: skip


def test_signature_covers_the_raw_body() -> None:
    raw = json.dumps(TEXT).encode()
    signed = signature_for(SECRET, raw)
    with pytest.raises(InvalidSignatureError):
        provider().authenticate(request(raw + b" ", signature=signed))
    with pytest.raises(InvalidSignatureError):
        provider().authenticate(WebhookRequest(URL, {}, raw))
    with pytest.raises(ProviderNotConfiguredError):
        WhatsAppCloudProvider(MessagingSettings()).authenticate(request(raw))


def test_statuses_become_delivery_reports() -> None:
    body = payload(
        {
            "statuses": [
                {"id": "wamid.O1", "status": "delivered", "recipient_id": "15551230001"},
                {"id": "wamid.O2", "status": "failed", "errors": [{"code": 131026}]},
            ]
        }
    )
    assert provider().parse(request(body)) == [
        DeliveryReport("whatsapp_cloud", "whatsapp", "wamid.O1", "delivered"),
        DeliveryReport("whatsapp_cloud", "whatsapp", "wamid.O2", "failed", "131026"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps({"object": "page", "entry": [{"changes": []}]}).encode(),
        json.dumps({"object": "whatsapp_business_account", "entry": []}).encode(),
        json.dumps(payload({"messages": [{"from": "x", "id": "w", "type": "text"}]})).encode(),
        json.dumps(
            payload({"messages": [{"from": "15551230001", "id": "w", "type": "text"}]})
        ).encode(),
        json.dumps(payload({"statuses": [{"id": "w", "status": "teleported"}]})).encode(),
    ],
)
def test_malformed_payloads_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedWebhookError):
        provider().parse(request(body))


def test_other_subscription_fields_are_ignored() -> None:
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"changes": [{"field": "account_update", "value": {}}]}],
    }
    assert provider().parse(request(body)) == []


def test_verify_token_handshake() -> None:
    assert provider().verify_subscription("subscribe", "verify-me", "1158201444") == "1158201444"
    for mode, token, challenge in [
        ("subscribe", "wrong", "1"),
        ("unsubscribe", "verify-me", "1"),
        ("subscribe", None, "1"),
        ("subscribe", "verify-me", None),
    ]:
        with pytest.raises(VerificationRefusedError):
            provider().verify_subscription(mode, token, challenge)
    with pytest.raises(ProviderNotConfiguredError):
        WhatsAppCloudProvider(MessagingSettings()).verify_subscription("subscribe", "x", "1")


def test_send_text_on_a_real_socket() -> None:
    reply = {"messaging_product": "whatsapp", "messages": [{"id": "wamid.OUT"}]}
    with fake_provider(status=200, reply=reply) as fake:
        sent = asyncio.run(
            provider(
                whatsapp_access_token=SecretStr("tok"),
                whatsapp_phone_number_id="PN1",
                whatsapp_api_base_url=fake.base_url + "/v21.0",
            ).send("whatsapp", "+15551230001", "hello")
        )
    assert (sent.provider_message_id, sent.status) == ("wamid.OUT", "queued")
    (received,) = fake.requests
    assert received.path == "/v21.0/PN1/messages"
    assert received.headers["authorization"] == "Bearer tok"
    assert json.loads(received.body)["to"] == "15551230001"
    assert json.loads(received.body)["text"]["body"] == "hello"


def test_send_failure() -> None:
    with fake_provider(status=401, reply={"error": {"message": "bad token"}}) as fake:
        p = provider(
            whatsapp_access_token=SecretStr("tok"),
            whatsapp_phone_number_id="PN1",
            whatsapp_api_base_url=fake.base_url,
        )
        with pytest.raises(DeliveryFailedError):
            asyncio.run(p.send("whatsapp", "+15551230001", "hello"))
