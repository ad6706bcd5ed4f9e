from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadline.channels.messaging import ids, phone
from threadline.channels.messaging.errors import InvalidPhoneNumberError
from threadline.channels.messaging.events import MessageDeliveryUpdated, register_events
from threadline.ledger import events as ledger_events
from threadline.ledger.errors import InvalidEventError


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_ids_are_deterministic_and_distinct(provider: str, sid: str) -> None:
    assert ids.message_event_id(provider, sid) == ids.message_event_id(provider, sid)
    assert ids.message_event_id(provider, sid) != ids.message_event_id(provider, sid + "x")
    assert ids.status_event_id(provider, sid, "sent") != ids.status_event_id(
        provider, sid, "delivered"
    )
    assert ids.conversation_for_message(provider, sid) == ids.conversation_for_message(
        provider, sid
    )


def test_leg_id_per_conversation_channel_and_number() -> None:
    a = ids.leg_id("c1", "sms", "+15551230001")
    assert a == ids.leg_id("c1", "sms", "+15551230001")
    assert a.startswith("sms-")
    assert a != ids.leg_id("c2", "sms", "+15551230001")
    assert a != ids.leg_id("c1", "whatsapp", "+15551230001")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+15551230001", "+15551230001"),
        ("whatsapp:+15551230001", "+15551230001"),
        ("tel:+1 (555) 123-0001", "+15551230001"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert phone.normalize(raw) == expected


@pytest.mark.parametrize("raw", ["15551230001", "+0555", "+1555123000123456", "abc", "", "+1-"])
def test_normalize_rejects(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumberError):
        phone.normalize(raw)


def test_bare_digits_with_assume_plus_and_subjects() -> None:
    assert phone.normalize("15551230001", assume_plus=True) == "+15551230001"
    assert phone.parse_subject("tel:+15551230001") == "+15551230001"
    assert phone.parse_subject("member:M-1") is None
    assert phone.parse_subject("tel:garbage") is None
    assert phone.subject_for("+15551230001") == "tel:+15551230001"


def test_delivery_event_is_registered_and_validated() -> None:
    register_events()  # idempotent
    register_events()
    data = ledger_events.parse_data(
        "MessageDeliveryUpdated",
        {
            "provider": "twilio",
            "channel": "sms",
            "provider_message_id": "SM1",
            "status": "delivered",
        },
    )
    assert isinstance(data, MessageDeliveryUpdated)
    with pytest.raises(InvalidEventError):
        ledger_events.parse_data(
            "MessageDeliveryUpdated",
            {"provider": "twilio", "channel": "sms", "provider_message_id": "SM1", "status": "?"},
        )
