"""Webhooks through a real uvicorn server on loopback, a SQLite ledger, signed like Twilio
and Meta sign them; replies go out to a provider API on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from tests.support.fake_provider import FakeProvider, fake_provider
from tests.support.uvicorn_thread import serve
from threadline.app.events import register_event_types
from threadline.channels.http.messaging_routes import install
from threadline.channels.messaging.directory import PhoneDirectory
from threadline.channels.messaging.service import MessagingService
from threadline.channels.messaging.settings import MessagingSettings
from threadline.channels.messaging.twilio import TwilioProvider
from threadline.channels.messaging.twilio_signature import compute_signature
from threadline.channels.messaging.whatsapp_cloud import WhatsAppCloudProvider, signature_for
from threadline.handoff import tokens
from threadline.handoff.service import HandoffService
from threadline.handoff.signing import Signer
from threadline.ledger.envelope import NewEvent, RecordedEvent
from threadline.ledger.events import (
    ConversationStarted,
    IdentityVerified,
    LegOpened,
    MessagePosted,
)
from threadline.ledger.store import Ledger, open_ledger

TOKEN = "integration-auth-token"
APP_SECRET = "integration-app-secret"
PHONE = "+15551230001"
SIGNER = Signer(b"s" * 32, tokens.PURPOSE)


@dataclass
class Env:
    base_url: str
    ledger: Ledger
    provider_api: FakeProvider

    def post_twilio(
        self, path: str, form: list[tuple[str, str]], *, signature: str | None = None
    ) -> httpx.Response:
        url = self.base_url + path
        sig = compute_signature(TOKEN, url, form) if signature is None else signature
        return httpx.post(url, data=dict(form), headers={"X-Twilio-Signature": sig}, timeout=10)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    register_event_types()  # this fixture is its own composition root
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    with fake_provider(
        reply={"sid": "SMreply0000000000000000000000000001", "status": "queued"}
    ) as api:
        settings = MessagingSettings(
            twilio_auth_token=SecretStr(TOKEN),
            twilio_account_sid="AC1",
            twilio_sms_from="+15559990000",
            twilio_api_base_url=api.base_url,
            whatsapp_app_secret=SecretStr(APP_SECRET),
            whatsapp_verify_token=SecretStr("verify-me"),
        )
        service = MessagingService(
            ledger,
            PhoneDirectory(ledger),
            {"twilio": TwilioProvider(settings), "whatsapp_cloud": WhatsAppCloudProvider(settings)},
            handoffs=HandoffService(ledger, signer=SIGNER),
        )
        app = FastAPI()
        install(app, service)
        with serve(app) as base_url:
            yield Env(base_url, ledger, api)
    ledger.close()


def sms(sid: str, body: str = "hello", sender: str = PHONE) -> list[tuple[str, str]]:
    return [
        ("MessageSid", sid),
        ("AccountSid", "AC1"),
        ("From", sender),
        ("To", "+15559990000"),
        ("Body", body),
        ("NumMedia", "0"),
    ]


SID1 = "SM" + "1" * 32
SID2 = "SM" + "2" * 32


def test_signed_sms_is_recorded_and_a_retry_is_not(env: Env) -> None:
    reply = env.post_twilio("/v1/channels/twilio/sms", sms(SID1))
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/xml")
    assert "<Response>" in reply.text
    after_first = env.ledger.max_sequence()
    assert after_first == 3  # ConversationStarted, LegOpened, MessagePosted
    for _ in range(3):
        assert env.post_twilio("/v1/channels/twilio/sms", sms(SID1)).status_code == 200
    assert env.ledger.max_sequence() == after_first


@pytest.mark.parametrize(
    "signature",
    ["", "bm90IGEgc2lnbmF0dXJl", compute_signature("wrong-token", "http://x/", sms(SID1))],
)
def test_badly_signed_requests_are_403_and_append_nothing(env: Env, signature: str) -> None:
    reply = env.post_twilio("/v1/channels/twilio/sms", sms(SID1), signature=signature)
    assert reply.status_code == 403
    assert reply.json()["error"] == "forbidden"
    assert env.ledger.max_sequence() == 0


def test_signature_over_another_url_or_tampered_body_is_refused(env: Env) -> None:
    form = sms(SID1)
    other_url_sig = compute_signature(TOKEN, env.base_url + "/v1/channels/twilio/whatsapp", form)
    assert (
        env.post_twilio("/v1/channels/twilio/sms", form, signature=other_url_sig).status_code == 403
    )
    signed = compute_signature(TOKEN, env.base_url + "/v1/channels/twilio/sms", form)
    tampered = [(k, "send money" if k == "Body" else v) for k, v in form]
    assert env.post_twilio("/v1/channels/twilio/sms", tampered, signature=signed).status_code == 403
    assert env.ledger.max_sequence() == 0


@pytest.mark.parametrize(
    "form",
    [
        [("From", PHONE), ("Body", "no sid")],
        [("MessageSid", SID1), ("From", "12"), ("Body", "bad number")],
        [("MessageSid", SID1), ("From", PHONE), ("Body", "")],
        [("MessageSid", SID1), ("From", "whatsapp:" + PHONE), ("Body", "wrong endpoint")],
    ],
)
def test_malformed_but_signed_bodies_are_4xx_and_append_nothing(
    env: Env, form: list[tuple[str, str]]
) -> None:
    reply = env.post_twilio("/v1/channels/twilio/sms", form)
    assert reply.status_code == 400
    assert reply.json()["error"] == "malformed_webhook"
    assert env.ledger.max_sequence() == 0


def test_non_form_and_oversized_bodies_are_refused(env: Env) -> None:
    url = env.base_url + "/v1/channels/twilio/sms"
    sig = compute_signature(TOKEN, url, [])
    as_json = httpx.post(url, json={"MessageSid": SID1}, headers={"X-Twilio-Signature": sig})
    assert as_json.status_code == 415
    huge = httpx.post(
        url,
        content=b"Body=" + b"x" * 70_000,
        headers={"X-Twilio-Signature": sig, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert huge.status_code == 413
    garbage = httpx.post(
        url,
        content=b"\xff\xfe=\x00",
        headers={"X-Twilio-Signature": sig, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert garbage.status_code == 400
    assert env.ledger.max_sequence() == 0


def transcript(events: list[RecordedEvent]) -> list[tuple[str, str, str]]:
    """(channel, role, text) per message, the channel taken from the leg's LegOpened."""
    channels: dict[str | None, str] = {}
    lines = []
    for event in events:
        if isinstance(event.data, LegOpened):
            channels[event.leg_id] = event.data.channel
        elif isinstance(event.data, MessagePosted):
            lines.append((channels.get(event.leg_id, "?"), event.data.role, event.data.text))
    return lines


def test_sms_and_chat_on_one_conversation(env: Env) -> None:
    cid = str(uuid4())
    env.ledger.append_batch(
        cid,
        [
            NewEvent("ConversationStarted", ConversationStarted(channel="chat")),
            NewEvent("LegOpened", LegOpened(channel="chat"), leg_id="chat-1"),
            NewEvent(
                "MessagePosted",
                MessagePosted(role="visitor", text="Is my January claim paid?"),
                leg_id="chat-1",
            ),
            NewEvent(
                "IdentityVerified",
                IdentityVerified(method="kba", level=2, subject=f"tel:{PHONE}"),
                leg_id="chat-1",
            ),
        ],
    )
    assert (
        env.post_twilio("/v1/channels/twilio/sms", sms(SID1, "on my phone now")).status_code == 200
    )
    env.ledger.append(
        cid,
        NewEvent(
            "MessagePosted", MessagePosted(role="visitor", text="back in chat"), leg_id="chat-1"
        ),
    )
    assert (
        env.post_twilio("/v1/channels/twilio/sms", sms(SID2, "and by text again")).status_code
        == 200
    )
    events = env.ledger.read(cid)
    assert transcript(events) == [
        ("chat", "visitor", "Is my January claim paid?"),
        ("sms", "visitor", "on my phone now"),
        ("chat", "visitor", "back in chat"),
        ("sms", "visitor", "and by text again"),
    ]
    # Identity carried: nothing verified or challenged on the SMS leg.
    sms_leg = next(
        e.leg_id for e in events if isinstance(e.data, LegOpened) and e.data.channel == "sms"
    )
    assert not [e for e in events if e.leg_id == sms_leg and "Verif" in e.type]
    assert len({e.conversation_id for e in env.ledger.read_all()}) == 1


def wait_for(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_continue_by_text_link_and_delivery_status(env: Env) -> None:
    cid = str(uuid4())
    env.ledger.append_batch(
        cid,
        [
            NewEvent("ConversationStarted", ConversationStarted(channel="chat")),
            NewEvent(
                "MessagePosted",
                MessagePosted(role="visitor", text="I am asking about my January claim"),
                leg_id="c1",
            ),
        ],
    )
    # What the chat's "continue by text" button gets (the link carries this token).
    token = HandoffService(env.ledger, signer=SIGNER).request_handoff(cid, "sms").token
    reply = env.post_twilio(
        "/v1/channels/twilio/sms", sms(SID1, f"Continue my conversation {token}")
    )
    assert reply.status_code == 200
    # The first utterance goes back by SMS through the provider's REST API...
    wait_for(lambda: len(env.provider_api.requests) == 1)
    sent = dict(httpx.QueryParams(env.provider_api.requests[0].body.decode()))
    assert sent["To"] == PHONE
    assert "January claim" in sent["Body"]
    wait_for(lambda: any(e.type == "MessageDeliveryUpdated" for e in env.ledger.read(cid)))
    types = [e.type for e in env.ledger.read(cid)]
    assert types[2:] == [
        "HandoffOffered",
        "HandoffAccepted",
        "LegOpened",
        "HandoffCompleted",
        "MessagePosted",
        "MessagePosted",
        "MessageDeliveryUpdated",
    ]
    # ...and its status callbacks land on the same conversation, once each.
    status = [
        ("MessageSid", "SMreply0000000000000000000000000001"),
        ("MessageStatus", "delivered"),
        ("To", PHONE),
    ]
    for _ in range(2):
        assert env.post_twilio("/v1/channels/twilio/status", status).status_code == 200
    delivered = [e for e in env.ledger.read(cid) if e.type == "MessageDeliveryUpdated"]
    assert [e.data.status for e in delivered] == ["queued", "delivered"]  # type: ignore[attr-defined]
    # A status for a message that is not ours appends nothing.
    before = env.ledger.max_sequence()
    other = [("MessageSid", SID2), ("MessageStatus", "sent"), ("To", PHONE)]
    assert env.post_twilio("/v1/channels/twilio/status", other).status_code == 200
    assert env.ledger.max_sequence() == before


def test_whatsapp_cloud_handshake_and_signed_events(env: Env) -> None:
    url = env.base_url + "/v1/channels/whatsapp"
    ok = httpx.get(
        url,
        params={"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "42"},
    )
    assert (ok.status_code, ok.text) == (200, "42")
    bad = httpx.get(
        url, params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "42"}
    )
    assert bad.status_code == 403
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "metadata": {"display_phone_number": "15559990000"},
                                "messages": [
                                    {
                                        "from": PHONE.lstrip("+"),
                                        "id": "wamid.ONE",
                                        "type": "text",
                                        "text": {"body": "hola"},
                                    }
                                ],
                            },
                        }
                    ]
                }
            ],
        }
    ).encode()
    headers = {"Content-Type": "application/json"}
    forged = httpx.post(url, content=body, headers={**headers, "X-Hub-Signature-256": "sha256=00"})
    assert forged.status_code == 403
    assert env.ledger.max_sequence() == 0
    signed = {**headers, "X-Hub-Signature-256": signature_for(APP_SECRET, body)}
    first = httpx.post(url, content=body, headers=signed)
    assert first.json() == {"received": 1, "recorded": 1}
    assert httpx.post(url, content=body, headers=signed).json() == {"received": 1, "recorded": 0}
    (started, leg, message) = env.ledger.read_all()
    assert started.type == "ConversationStarted"
    assert leg.data == LegOpened(channel="whatsapp", transport_ref=f"whatsapp:{PHONE}")
    assert message.data == MessagePosted(role="visitor", text="hola")
    malformed = b'{"object": "whatsapp_business_account", "entry": []}'
    bad_body = httpx.post(
        url,
        content=malformed,
        headers={**headers, "X-Hub-Signature-256": signature_for(APP_SECRET, malformed)},
    )
    assert bad_body.status_code == 400
    assert env.ledger.max_sequence() == 3
