from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

import pytest
from pydantic import SecretStr

from tests.support.fake_provider import fake_provider
from threadline.channels.messaging.errors import (
    DeliveryFailedError,
    InvalidSignatureError,
    MalformedWebhookError,
    ProviderNotConfiguredError,
)
from threadline.channels.messaging.provider import DeliveryReport, InboundMessage, WebhookRequest
from threadline.channels.messaging.settings import MessagingSettings
from threadline.channels.messaging.twilio import TwilioProvider
from threadline.channels.messaging.twilio_signature import compute_signature

TOKEN = "test-auth-token"
URL = "https://hooks.example.test/v1/channels/twilio/sms"
SID = "SM0123456789abcdef0123456789abcdef"


def settings(**extra: object) -> MessagingSettings:
    return MessagingSettings(twilio_auth_token=SecretStr(TOKEN), **extra)  # type: ignore[arg-type]


def request(form: list[tuple[str, str]], signature: str | None = None) -> WebhookRequest:
    sig = compute_signature(TOKEN, URL, form) if signature is None else signature
    return WebhookRequest(URL, {"x-twilio-signature": sig}, b"", tuple(form))


SMS = [("MessageSid", SID), ("From", "+15551230001"), ("To", "+15559990000"), ("Body", "hi")]


def test_signed_sms_is_parsed() -> None:
    provider = TwilioProvider(settings())
    req = request(SMS)
    provider.authenticate(req)
    assert provider.parse(req) == [
        InboundMessage("twilio", "sms", SID, "+15551230001", "+15559990000", "hi")
    ]


def test_whatsapp_prefix_sets_channel() -> None:
    form = [("MessageSid", SID), ("From", "whatsapp:+15551230001"), ("Body", "hola")]
    (item,) = TwilioProvider(settings()).parse(request(form))
    assert isinstance(item, InboundMessage)
    assert (item.channel, item.from_number, item.to_number) == ("whatsapp", "+15551230001", None)


def test_bad_signature_and_missing_token() -> None:
    with pytest.raises(InvalidSignatureError):
        TwilioProvider(settings()).authenticate(request(SMS, signature="bogus"))
    with pytest.raises(InvalidSignatureError):
        TwilioProvider(settings()).authenticate(
            WebhookRequest(URL, {}, b"", tuple(SMS))  # no header at all
        )
    with pytest.raises(ProviderNotConfiguredError):
        TwilioProvider(MessagingSettings()).authenticate(request(SMS))


@pytest.mark.parametrize(
    "form",
    [
        [("From", "+15551230001"), ("Body", "no sid")],
        [("MessageSid", "bad sid!"), ("From", "+15551230001"), ("Body", "x")],
        [("MessageSid", SID), ("Body", "no sender")],
        [("MessageSid", SID), ("From", "not-a-number"), ("Body", "x")],
        [("MessageSid", SID), ("From", "+15551230001"), ("Body", "  ")],
        [("MessageSid", SID), ("From", "+15551230001"), ("Body", "x" * 8001)],
        [("MessageSid", SID), ("MessageSid", SID + "0"), ("From", "+15551230001"), ("Body", "x")],
        [("MessageSid", SID), ("MessageStatus", "exploded"), ("To", "+15551230001")],
    ],
)
def test_malformed_forms_are_refused(form: list[tuple[str, str]]) -> None:
    with pytest.raises(MalformedWebhookError):
        TwilioProvider(settings()).parse(request(form))


def test_media_only_message_gets_a_marker() -> None:
    form = [("MessageSid", SID), ("From", "+15551230001"), ("Body", ""), ("NumMedia", "2")]
    (item,) = TwilioProvider(settings()).parse(request(form))
    assert isinstance(item, InboundMessage)
    assert item.text == "[2 media attachment(s)]"


def test_status_callback_is_a_delivery_report() -> None:
    form = [
        ("MessageSid", SID),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "30003"),
        ("To", "whatsapp:+15551230001"),
    ]
    assert TwilioProvider(settings()).parse(request(form)) == [
        DeliveryReport("twilio", "whatsapp", SID, "undelivered", "30003")
    ]


def test_send_posts_to_the_messages_resource_on_a_real_socket() -> None:
    with fake_provider(reply={"sid": "SMout1", "status": "queued"}) as fake:
        provider = TwilioProvider(
            settings(
                twilio_account_sid="AC1",
                twilio_sms_from="+15559990000",
                twilio_api_base_url=fake.base_url,
                twilio_status_callback_url="https://hooks.example.test/v1/channels/twilio/status",
            )
        )
        sent = asyncio.run(provider.send("sms", "+15551230001", "Your claim is approved"))
    assert (sent.provider_message_id, sent.status, sent.to_number) == (
        "SMout1",
        "queued",
        "+15551230001",
    )
    (received,) = fake.requests
    assert received.path == "/2010-04-01/Accounts/AC1/Messages.json"
    assert received.headers["authorization"].startswith("Basic ")
    form = dict(parse_qsl(received.body.decode()))
    assert form == {
        "To": "+15551230001",
        "From": "+15559990000",
        "Body": "Your claim is approved",
        "StatusCallback": "https://hooks.example.test/v1/channels/twilio/status",
    }


def test_send_whatsapp_prefixes_both_numbers() -> None:
    with fake_provider(reply={"sid": "SMout2"}) as fake:
        provider = TwilioProvider(
            settings(
                twilio_account_sid="AC1",
                twilio_whatsapp_from="+15559990000",
                twilio_api_base_url=fake.base_url,
            )
        )
        asyncio.run(provider.send("whatsapp", "+15551230001", "hi"))
    form = dict(parse_qsl(fake.requests[0].body.decode()))
    assert (form["To"], form["From"]) == ("whatsapp:+15551230001", "whatsapp:+15559990000")


def test_send_errors_are_delivery_failures() -> None:
    with fake_provider(status=400, reply={"message": "The 'To' number is not valid"}) as fake:
        provider = TwilioProvider(
            settings(
                twilio_account_sid="AC1",
                twilio_sms_from="+15559990000",
                twilio_api_base_url=fake.base_url,
            )
        )
        with pytest.raises(DeliveryFailedError) as info:
            asyncio.run(provider.send("sms", "+15551230001", "hi"))
    assert info.value.status_code == 400
    assert "not valid" in info.value.reason
    with pytest.raises(ProviderNotConfiguredError):
        asyncio.run(TwilioProvider(settings()).send("sms", "+15551230001", "hi"))
